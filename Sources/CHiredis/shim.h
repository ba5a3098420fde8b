// Debian's libhiredis-dev (0.14): the synchronous Redis client (no threads, no event loop).
#include <hiredis/hiredis.h>
