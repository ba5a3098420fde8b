// luamp_gc.h: The garbage collector paused around a message (lua_gc is variadic).
#ifndef LUAMP_GC_H
#define LUAMP_GC_H

#include "luamp_lua.h"

/// Stops the garbage collector and returns whether it was running (lua_gc is variadic). The encoder
/// pauses it so no finalizer can run, and modify a table being read, in the middle of a message.
static inline int luamp_gc_pause(lua_State *L) {
    int running = lua_gc(L, LUA_GCISRUNNING);
    if (running) lua_gc(L, LUA_GCSTOP);
    return running;
}
/// Restarts the garbage collector (lua_gc is variadic).
static inline void luamp_gc_resume(lua_State *L) { lua_gc(L, LUA_GCRESTART); }

#endif
