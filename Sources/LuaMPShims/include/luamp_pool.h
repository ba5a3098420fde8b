// Pool workers' C helpers: the per-chunk call loop (lua_call may raise), lua_gc (variadic).
#ifndef LUAMP_POOL_H
#define LUAMP_POOL_H

#include <lua.h>

/// Pool chunk modes (the `mode` argument of luamp_pool_run_chunk).
enum {
    LUAMP_POOL_MAP = 0,    // r[i] = f(items[i])
    LUAMP_POOL_STAR = 1,   // r[i] = f(table.unpack(items[i], 1, items[i].n or #items[i]))
    LUAMP_POOL_APPLY = 2,  // r = table.pack(f(table.unpack(items, 1, count)))
};

/// A lua_CFunction run by a worker under lua_pcall: arguments (f, count, mode, items...), results
/// one value per item (map/star), or every return value of f(items...) (apply).
/// C: it calls lua_call in a loop, which may raise (Swift never calls lua_call).
int luamp_pool_run_chunk(lua_State *L);

/// Pushes a task's message handler (for `luamp_pcall`'s `msgh`; push it before the function and
/// its arguments, so nothing is rotated under them). On error the handler leaves
/// {value, text, traceback} (a string instead when memory ran out). C: it calls luaL_traceback
/// and __tostring, which may raise. Stack: [-0, +1].
void luamp_pool_push_handler(lua_State *L);

/// Creates a table with `n` array slots (all nil) under a protected call, so that running out of
/// memory is a status, not a raise. Returns LUA_OK with the table on top, or an error status
/// with the error value on top. Stack: [-0, +1].
int luamp_pool_newlist(lua_State *L, int n);

/// A lua_CFunction run by a worker under lua_pcall: arguments (list, n, f); stores f(list[i])
/// into list[i] for i = 1..n (a map chunk of plain numbers, decoded straight into the list).
/// C: it calls lua_call in a loop, which may raise.
int luamp_pool_run_list(lua_State *L);

/// A worker's collector policy (lua_gc is variadic; the guard is a C hook). The collector starts
/// stopped, so the heap inherited from the host is not traversed (its pages stay shared with
/// the host) while the worker allocates little. Once the worker has allocated `limit_kb` (an
/// allocator wrapper counts; it arms a count hook on the task thread `T`, whose coroutines
/// inherit it, and `luamp_worker_gc_check` runs between chunks) the collector restarts in
/// generational mode: one full collection, then mostly young objects are traversed.
void luamp_worker_gc_begin(lua_State *L, lua_State *T, int limit_kb);
/// Between chunks: applies the policy above. Returns 1 once the collector runs.
int luamp_worker_gc_check(lua_State *L);
/// The heap size in KiB (LUA_GCCOUNT).
int luamp_gc_count_kb(lua_State *L);

#endif
