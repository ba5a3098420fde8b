// Output labels: a child's stdout/stderr through a line-labelling stream (fopencookie is GNU-only).
#ifndef LUAMP_LABEL_H
#define LUAMP_LABEL_H

#include <lua.h>

/// In a child: replaces C's `stdout` and `stderr` (what `print` writes to) and the streams of
/// `io.stdout`, `io.stderr` and the default output by streams that write every complete line as
/// `prefix` + line with one write(2) (so lines of different processes never tear). Lines inherited
/// half-written from the parent are dropped here (the parent writes them). Returns 0, or -1 when a
/// stream cannot be made (output stays unlabelled). Never raises.
/// C: fopencookie is a GNU libc call, and luaL_Stream's layout is lauxlib's.
int luamp_label_install(lua_State *L, const char *prefix);

/// True once luamp_label_install succeeded in this process (a child of a labelled process labels too).
int luamp_label_active(void);

/// Before the process ends: flushes both streams and writes a last line that has no newline yet.
void luamp_label_finish(void);

#endif
