// Pool shims: what a pool worker must do in C (the chunk's call loop, lua_gc, SIGINT disposition).
#include "luamp_pool.h"
#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>

/// Pushes items[i]'s arguments (its `n` field or its border) and returns how many. Stack: [-1, +k].
static int unpack_args(lua_State *L, lua_Integer i) {
    int t = lua_gettop(L);
    if (lua_type(L, t) != LUA_TTABLE)
        return luaL_error(L, "starmap: item %I is a %s, not a table of arguments", (LUAI_UACINT)i, luaL_typename(L, t));
    lua_pushliteral(L, "n");
    lua_Integer k = (lua_rawget(L, t) == LUA_TNUMBER) ? lua_tointeger(L, -1) : (lua_Integer)lua_rawlen(L, t);
    lua_pop(L, 1);
    if (k < 0 || k > 250) return luaL_error(L, "starmap: item %I has %I arguments (at most 250)", (LUAI_UACINT)i, (LUAI_UACINT)k);
    luaL_checkstack(L, (int)k + 2, "too many arguments");
    for (lua_Integer j = 1; j <= k; j++) lua_rawgeti(L, t, j);
    lua_remove(L, t);
    return (int)k;
}

int luamp_pool_run_chunk(lua_State *L) {
    lua_Integer n = lua_tointeger(L, 3);
    int mode = (int)lua_tointeger(L, 4);
    lua_settop(L, 4);
    if (mode == LUAMP_POOL_APPLY) {
        if (n < 0 || n > 250) return luaL_error(L, "too many arguments (%I)", (LUAI_UACINT)n);
        luaL_checkstack(L, (int)n + 2, "too many arguments");
        lua_pushvalue(L, 1);
        for (lua_Integer j = 1; j <= n; j++) lua_rawgeti(L, 2, j);
        lua_call(L, (int)n, LUA_MULTRET);
        int nres = lua_gettop(L) - 4;
        lua_createtable(L, nres, 1);
        lua_insert(L, 5);
        for (int j = nres; j >= 1; j--) lua_rawseti(L, 5, j);
        lua_pushinteger(L, nres);
        lua_setfield(L, 5, "n");
        return 1;
    }
    lua_createtable(L, n > 0 && n < (1 << 26) ? (int)n : 0, 0);   // 5: results
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 1);
        lua_rawgeti(L, 2, i);
        if (mode == LUAMP_POOL_STAR) {
            int k = unpack_args(L, i);
            lua_call(L, k, 1);
        } else {
            lua_call(L, 1, 1);
        }
        lua_rawseti(L, 5, i);
    }
    return 1;
}

void luamp_gc_generational(lua_State *L) { (void)lua_gc(L, LUA_GCGEN, 0, 0); }

void luamp_ignore_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGINT, &sa, NULL);
}

int luamp_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
