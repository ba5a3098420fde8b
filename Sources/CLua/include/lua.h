// Forwards to Debian's liblua5.4-dev header (/usr/include/lua5.4).
#include <lua5.4/lua.h>
