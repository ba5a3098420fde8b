// luamp_lua.h: Lua macros wrapped for Swift (values come from luaconf.h, so they are wrapped, not re-implemented).
#ifndef LUAMP_LUA_H
#define LUAMP_LUA_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

static inline int luamp_registryindex(void) { return LUA_REGISTRYINDEX; }               // macro
static inline int luamp_upvalueindex(int i) { return lua_upvalueindex(i); }             // macro
static inline void luamp_pop(lua_State *L, int n) { lua_pop(L, n); }                    // macro
static inline void luamp_insert(lua_State *L, int idx) { lua_insert(L, idx); }          // macro
static inline void luamp_remove(lua_State *L, int idx) { lua_remove(L, idx); }          // macro
static inline void luamp_replace(lua_State *L, int idx) { lua_replace(L, idx); }        // macro
static inline const char *luamp_tolstring(lua_State *L, int i, size_t *len) { return lua_tolstring(L, i, len); }
static inline lua_Integer luamp_tointegerx(lua_State *L, int i, int *isnum) { return lua_tointegerx(L, i, isnum); }
static inline lua_Number luamp_tonumberx(lua_State *L, int i, int *isnum) { return lua_tonumberx(L, i, isnum); }
static inline void luamp_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }      // macro
static inline void *luamp_newuserdata(lua_State *L, size_t size) { return lua_newuserdatauv(L, size, 1); }
static inline int luamp_loadbuffer(lua_State *L, const char *buf, size_t len, const char *name, const char *mode) {
    return luaL_loadbufferx(L, buf, len, name, mode);
}
/// The Lua release string, e.g. "Lua 5.4.4" (a macro).
static inline const char *luamp_lua_release(void) { return LUA_RELEASE; }
/// "Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio": what `lua -v` prints (a macro).
static inline const char *luamp_lua_copyright(void) { return LUA_COPYRIGHT; }
/// The most slots a Lua stack may hold (LUAI_MAXSTACK from luaconf.h, a macro).
static inline int luamp_lua_maxstack(void) { return LUAI_MAXSTACK; }

/// Calls lua_warning (cannot raise through Swift: warnings never raise).
static inline void luamp_warning(lua_State *L, const char *msg, int tocont) { lua_warning(L, msg, tocont); }

#endif
