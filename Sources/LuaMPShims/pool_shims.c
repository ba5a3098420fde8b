// Pool shims: what a pool worker must do in C (the chunk's call loop, lua_gc).
#include "luamp_pool.h"
#include "luamp_shims.h"
#include <lauxlib.h>

/// Replaces the table at `idx` (item i of a starmap chunk) by its arguments (its `n` field or
/// its border) pushed on top; returns how many. Stack: [-0, +k].
static int push_args(lua_State *L, int idx, lua_Integer i) {
    if (lua_type(L, idx) != LUA_TTABLE)
        return luaL_error(L, "starmap: item %I is a %s, not a table of arguments", (LUAI_UACINT)i, luaL_typename(L, idx));
    lua_pushliteral(L, "n");
    lua_Integer k = (lua_rawget(L, idx) == LUA_TNUMBER) ? lua_tointeger(L, -1) : (lua_Integer)lua_rawlen(L, idx);
    lua_pop(L, 1);
    if (k < 0 || k > 250) return luaL_error(L, "starmap: item %I has %I arguments (at most 250)", (LUAI_UACINT)i, (LUAI_UACINT)k);
    luaL_checkstack(L, (int)k + 2, "too many arguments");
    for (lua_Integer j = 1; j <= k; j++) lua_rawgeti(L, idx, j);
    return (int)k;
}

int luamp_pool_run_chunk(lua_State *L) {
    int mode = (int)lua_tointeger(L, 3);
    int n = lua_gettop(L) - 3;                     // the items (or apply's arguments) follow
    if (mode == LUAMP_POOL_APPLY) {
        lua_pushvalue(L, 1);
        lua_rotate(L, 4, 1);                       // f below the arguments
        lua_call(L, n, LUA_MULTRET);
        return lua_gettop(L) - 3;
    }
    luaL_checkstack(L, 260, "chunk");
    for (int i = 0; i < n; i++) {
        int idx = 4 + i;
        lua_pushvalue(L, 1);
        if (mode == LUAMP_POOL_STAR) {
            int k = push_args(L, idx, i + 1);
            lua_call(L, k, 1);
        } else {
            lua_pushvalue(L, idx);
            lua_call(L, 1, 1);
        }
        lua_replace(L, idx);                       // the result takes the item's place
    }
    return n;
}

int luamp_pool_run_list(lua_State *L) {
    lua_Integer n = lua_tointeger(L, 2);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushvalue(L, 3);
        lua_rawgeti(L, 1, i);
        lua_call(L, 1, 1);
        lua_rawseti(L, 1, i);
    }
    return 0;
}

// A worker's collector guard (per process: each worker is its own process).
static int gc_running;
static lua_State *gc_task_thread;
static lua_Alloc gc_orig_alloc;
static void *gc_orig_ud;
static long long gc_allocated;      // net bytes allocated since luamp_worker_gc_begin
static long long gc_limit;
static volatile int gc_trip;

int luamp_gc_count_kb(lua_State *L) { return lua_gc(L, LUA_GCCOUNT); }

int luamp_worker_gc_check(lua_State *L) {
    if (!gc_running && (gc_trip || gc_allocated > gc_limit)) {
        gc_running = 1;
        if (gc_task_thread) lua_sethook(gc_task_thread, NULL, 0, 0);
        lua_setallocf(L, gc_orig_alloc, gc_orig_ud);
        lua_gc(L, LUA_GCRESTART);
        (void)lua_gc(L, LUA_GCGEN, 0, 0);
    }
    return gc_running;
}

static void gc_guard_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (gc_trip) (void)luamp_worker_gc_check(L);
}

/// Counts net allocation; past the limit it arms a count-1 hook on the task thread (lua_sethook
/// may be called at any time), so the next instruction restarts the collector — the allocator
/// itself must never collect.
static void *gc_guard_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    void *r = gc_orig_alloc(ud, ptr, osize, nsize);
    if (r != NULL || nsize == 0) {
        gc_allocated += (long long)nsize - (ptr ? (long long)osize : 0);
        if (!gc_trip && gc_allocated > gc_limit) {
            gc_trip = 1;
            if (gc_task_thread) lua_sethook(gc_task_thread, gc_guard_hook, LUA_MASKCOUNT, 1);
        }
    }
    return r;
}

void luamp_worker_gc_begin(lua_State *L, lua_State *T, int limit_kb) {
    gc_running = 0;
    gc_trip = 0;
    gc_task_thread = T;
    gc_allocated = 0;
    gc_limit = (long long)limit_kb * 1024;
    void *ud;
    lua_Alloc current = lua_getallocf(L, &ud);
    if (current != gc_guard_alloc) {          // a worker forked by a worker inherits the guard
        gc_orig_alloc = current;
        gc_orig_ud = ud;
    }
    lua_setallocf(L, gc_guard_alloc, gc_orig_ud);
    lua_gc(L, LUA_GCSTOP);
}

/// A task's message handler: keeps the error value itself beside its text and a traceback,
/// as {value, text, traceback} (the text of a value with __tostring is its tostring).
static int pool_msghandler(lua_State *L) {
    if (!lua_checkstack(L, 8)) return 1;
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    (void)luamp_error_text(L, 1);
    lua_rawseti(L, -2, 2);
    luaL_traceback(L, L, NULL, 1);
    lua_rawseti(L, -2, 3);
    return 1;
}

void luamp_pool_push_handler(lua_State *L) { lua_pushcfunction(L, pool_msghandler); }

static int newlist(lua_State *L) {
    lua_createtable(L, (int)lua_tointeger(L, 1), 0);
    return 1;
}

int luamp_pool_newlist(lua_State *L, int n) {
    if (!lua_checkstack(L, 3)) return LUA_ERRMEM;
    lua_pushcfunction(L, newlist);
    lua_pushinteger(L, n);
    return lua_pcall(L, 1, 1, 0);
}

