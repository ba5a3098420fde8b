// luamp_stdio.h: stdio and Lua file handles: Swift 6 cannot import stdout/stderr; file handles are the io library's (file_shims.c).
#ifndef LUAMP_STDIO_H
#define LUAMP_STDIO_H

#include <stdio.h>
#include "luamp_lua.h"

static inline FILE *luamp_stdout(void) { return stdout; }
static inline FILE *luamp_stderr(void) { return stderr; }
static inline FILE *luamp_stdin(void) { return stdin; }

/// The descriptor of the io library file handle at `idx`, after flushing it, and in `*pos` its
/// logical position (`ftell`: -1 when not seekable); -1 for a closed handle, -2 when the value is
/// not a file handle. Never raises.
int luamp_file_descriptor(lua_State *L, int idx, long long *pos);
/// Pushes a new io library file handle reading/writing `fd` (fdopen with `mode`); 0 (nothing
/// pushed, `fd` still open) when fdopen fails. Stack: [-0, +1|0].
int luamp_push_file(lua_State *L, int fd, const char *mode);

#endif
