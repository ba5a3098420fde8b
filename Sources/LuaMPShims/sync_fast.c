// Hot sync paths as plain lua_CFunctions: Lock acquire/release and Value/Array cell access without Swift.
//
// Why C: a call from Lua into a C function costs a few nanoseconds; going through the Swift
// trampoline (LuaStack, runFast, error protocol) costs several times that, and the contended
// Lock + Value loop makes four such calls per iteration. Each function here does only the
// common, non-blocking case (an uncontended or briefly contended lock, an in-range cell of a
// plain type) and otherwise calls the Swift implementation it was created with (upvalue 1),
// which owns every slow, blocking or error path (timeouts, Ctrl-C slices, self-deadlock, RLock
// re-entry, range errors, messages). Errors raised here come only from that Swift fallback's
// protocol (raised after Swift returned) or from misuse detected before any Swift frame runs.
#include "luamp_sync.h"
#include "luamp_spin.h"
#include "luamp_shims.h"
#include <errno.h>
#include <string.h>
#include <lauxlib.h>

static unsigned char *arena_base;
static uint64_t arena_size;

void luamp_sync_fast_set_arena(void *base, uint64_t size) {
    arena_base = (unsigned char *)base;
    arena_size = size;
}

/// Calls the Swift fallback in upvalue 1 with the fast-function protocol (sync_shims.c).
static inline int slow_path(lua_State *L) { return luamp_fast_trampoline(L); }

/// The arena object behind the userdata at slot 1 when it is a luamp object of `magic`
/// (the SharedRef layout of luamp_layouts.h), else NULL.
static inline unsigned char *object_at(lua_State *L, uint32_t magic) {
    const unsigned char *ref = (const unsigned char *)lua_touserdata(L, 1);
    if (ref == NULL || lua_rawlen(L, 1) != LUAMP_SHARED_REF_SIZE) return NULL;   // light userdata: 0
    uint32_t m; uint64_t off;
    memcpy(&m, ref + LUAMP_SHARED_REF_MAGIC_OFFSET, 4);
    memcpy(&off, ref + LUAMP_SHARED_REF_OFFSET_OFFSET, 8);
    if (m != magic || arena_base == NULL || off >= arena_size) return NULL;
    return arena_base + off;
}

// ---- Lock / RLock (SharedLock layout, luamp_layouts.h) ----

static inline uint32_t *lock_owner(unsigned char *o) { return (uint32_t *)(o + LUAMP_LOCK_OWNER_OFFSET); }
static inline uint32_t *lock_depth(unsigned char *o) { return (uint32_t *)(o + LUAMP_LOCK_DEPTH_OFFSET); }
static inline pthread_mutex_t *lock_mutex(unsigned char *o) { return (pthread_mutex_t *)(o + LUAMP_LOCK_MUTEX_OFFSET); }

/// `lock:acquire()` with no arguments: trylock, then a bounded spin (pause + trylock when the
/// word reads free). Owner death is repaired here (the trylock consumed it). Anything else —
/// arguments, still busy, self-deadlock, RLock re-entry, errors — goes to Swift.
static inline int lock_acquire(lua_State *L, uint32_t magic) {
    unsigned char *o = object_at(L, magic);
    if (o == NULL || lua_gettop(L) != 1) return slow_path(L);
    pthread_mutex_t *m = lock_mutex(o);
    // Busy: the spin policy (luamp_spin.h), then Swift (which spins as long again, then sleeps).
    int rc = luamp_spin_trylock(m, pthread_mutex_trylock(m));
    if (rc == EOWNERDEAD) {
        if (pthread_mutex_consistent(m) != 0) return slow_path(L);   // cannot happen: we hold it
        luamp_relaxed_store32(lock_owner(o), luamp_self_pid_value);
        luamp_relaxed_store32(lock_depth(o), 1);
        lua_pushboolean(L, 1);
        lua_pushliteral(L, "owner-died");
        return 2;
    }
    if (rc != 0) return slow_path(L);
    luamp_relaxed_store32(lock_owner(o), luamp_self_pid_value);
    luamp_relaxed_store32(lock_depth(o), 1);
    lua_pushboolean(L, 1);
    return 1;
}

/// `lock:release()` by the holder; anything unusual (not held by us) goes to Swift for its message.
static inline int lock_release(lua_State *L, uint32_t magic) {
    unsigned char *o = object_at(L, magic);
    if (o == NULL || luamp_relaxed_load32(lock_owner(o)) != luamp_self_pid_value || !luamp_mutex_is_locked(lock_mutex(o)))
        return slow_path(L);
    // depth is read without the mutex by describe: relaxed atomics (plain moves on x86/arm64).
    uint32_t d = luamp_relaxed_load32(lock_depth(o));
    if (d > 1) { luamp_relaxed_store32(lock_depth(o), d - 1); return 0; }
    luamp_relaxed_store32(lock_depth(o), 0);
    luamp_relaxed_store32(lock_owner(o), 0);
    if (pthread_mutex_unlock(lock_mutex(o)) != 0)
        return luaL_argerror(L, 1, "cannot release un-acquired lock");
    return 0;
}

static int lock_acquire_fn(lua_State *L) { return lock_acquire(L, LUAMP_MAGIC_LOCK); }
static int rlock_acquire_fn(lua_State *L) { return lock_acquire(L, LUAMP_MAGIC_RLOCK); }
static int lock_release_fn(lua_State *L) { return lock_release(L, LUAMP_MAGIC_LOCK); }
static int rlock_release_fn(lua_State *L) { return lock_release(L, LUAMP_MAGIC_RLOCK); }

// ---- Value / Array cells (SharedCells layout, luamp_layouts.h) ----


/// Pushes the cell at `p` of typecode `t` (as TypeCode.push). Returns 0 for an unknown code.
static inline int push_cell(lua_State *L, unsigned char t, unsigned char *p) {
    switch (t) {
    case 'q': case 'Q': case 'l': case 'L':
        lua_pushinteger(L, (lua_Integer)(int64_t)luamp_cell_load64((uint64_t *)p)); return 1;
    case 'd': {
        uint64_t b = luamp_cell_load64((uint64_t *)p); double d; memcpy(&d, &b, 8);
        lua_pushnumber(L, d); return 1;
    }
    case 'i': lua_pushinteger(L, (int32_t)luamp_cell_load32((uint32_t *)p)); return 1;
    case 'I': lua_pushinteger(L, luamp_cell_load32((uint32_t *)p)); return 1;
    case 'h': lua_pushinteger(L, (int16_t)luamp_cell_load16((uint16_t *)p)); return 1;
    case 'H': lua_pushinteger(L, luamp_cell_load16((uint16_t *)p)); return 1;
    case 'b': lua_pushinteger(L, (int8_t)luamp_cell_load8((uint8_t *)p)); return 1;
    case 'B': lua_pushinteger(L, luamp_cell_load8((uint8_t *)p)); return 1;
    case 'f': {
        uint32_t b = luamp_cell_load32((uint32_t *)p); float f; memcpy(&f, &b, 4);
        lua_pushnumber(L, (lua_Number)f); return 1;
    }
    default: return 0;
    }
}

/// Stores the value at slot 3 into the cell for the common cases (an integer into a 64-bit or
/// 32-bit integer cell within range, a number into a double cell). Returns 0 when Swift must
/// decide (conversions, range and type errors, small types).
static inline int store_cell(lua_State *L, unsigned char t, unsigned char *p) {
    if (t == 'd') {
        if (lua_type(L, 3) != LUA_TNUMBER) return 0;
        double d = (double)lua_tonumber(L, 3); uint64_t b; memcpy(&b, &d, 8);
        luamp_cell_store64((uint64_t *)p, b);
        return 1;
    }
    if (!lua_isinteger(L, 3)) return 0;
    lua_Integer v = lua_tointeger(L, 3);
    switch (t) {
    case 'q': case 'l': luamp_cell_store64((uint64_t *)p, (uint64_t)v); return 1;
    case 'Q': case 'L': if (v < 0) return 0; luamp_cell_store64((uint64_t *)p, (uint64_t)v); return 1;
    case 'i': if (v < INT32_MIN || v > INT32_MAX) return 0; luamp_cell_store32((uint32_t *)p, (uint32_t)v); return 1;
    case 'I': if (v < 0 || v > (lua_Integer)UINT32_MAX) return 0; luamp_cell_store32((uint32_t *)p, (uint32_t)v); return 1;
    default: return 0;
    }
}

static inline size_t cell_size(unsigned char t) {
    switch (t) {
    case 'b': case 'B': return 1;
    case 'h': case 'H': return 2;
    case 'i': case 'I': case 'f': return 4;
    default: return 8;
    }
}

/// True when slot 2 is the string "value" (upvalue 2): short strings are interned, so
/// lua_rawequal is one type-tag and pointer compare.
static inline int key_is_value(lua_State *L) {
    return lua_rawequal(L, 2, lua_upvalueindex(2));
}

/// Pushes method slot 2 from the metatable's `__methods` when it is there (raw lookups only) and
/// is not `get_lock` (whose answer depends on the Value); returns 0 to let Swift decide.
static inline int push_method(lua_State *L) {
    if (lua_type(L, 2) != LUA_TSTRING || !lua_getmetatable(L, 1)) return 0;
    lua_pushliteral(L, "__methods");
    if (lua_rawget(L, -2) != LUA_TTABLE) { lua_pop(L, 2); return 0; }
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) == LUA_TNIL || strcmp(lua_tostring(L, 2), "get_lock") == 0) { lua_pop(L, 3); return 0; }
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 1;
}

/// `v.value`, and methods such as `v.add` (any other key: Swift).
static int value_index(lua_State *L) {
    unsigned char *o = object_at(L, LUAMP_MAGIC_VALUE);
    if (o == NULL) return slow_path(L);
    if (key_is_value(L)) return push_cell(L, o[LUAMP_CELLS_TYPE_OFFSET], o + LUAMP_CELLS_DATA_OFFSET) ? 1 : slow_path(L);
    return push_method(L) ? 1 : slow_path(L);
}

/// `v:add([n])` on a 64-bit signed cell (one `lock xadd`, wrapping like Lua); others: Swift.
static int value_add(lua_State *L) {
    unsigned char *o = object_at(L, LUAMP_MAGIC_VALUE);
    int top = lua_gettop(L);
    if (o == NULL || (o[LUAMP_CELLS_TYPE_OFFSET] != 'q' && o[LUAMP_CELLS_TYPE_OFFSET] != 'l') || top > 2
        || (top == 2 && !lua_isinteger(L, 2))) return slow_path(L);
    uint64_t n = top == 2 ? (uint64_t)lua_tointeger(L, 2) : 1;
    lua_pushinteger(L, (lua_Integer)__atomic_add_fetch((uint64_t *)(o + LUAMP_CELLS_DATA_OFFSET), n, __ATOMIC_SEQ_CST));
    return 1;
}

/// `v.value = x` for the common cases (others: Swift, which checks and explains).
static int value_newindex(lua_State *L) {
    unsigned char *o = object_at(L, LUAMP_MAGIC_VALUE);
    if (o == NULL || !key_is_value(L) || !store_cell(L, o[LUAMP_CELLS_TYPE_OFFSET], o + LUAMP_CELLS_DATA_OFFSET)) return slow_path(L);
    return 0;
}

/// The cell for the in-range 1-based integer index at slot 2, else NULL.
static inline unsigned char *array_cell(lua_State *L, unsigned char *o) {
    if (!lua_isinteger(L, 2)) return NULL;
    lua_Integer i = lua_tointeger(L, 2);
    uint64_t n; memcpy(&n, o + LUAMP_CELLS_COUNT_OFFSET, 8);
    if (i < 1 || (uint64_t)i > n) return NULL;
    return o + LUAMP_CELLS_DATA_OFFSET + (size_t)(i - 1) * cell_size(o[LUAMP_CELLS_TYPE_OFFSET]);
}

/// `a[i]` for an in-range integer index (other keys and errors: Swift).
static int array_index(lua_State *L) {
    unsigned char *o = object_at(L, LUAMP_MAGIC_ARRAY);
    unsigned char *p = o ? array_cell(L, o) : NULL;
    if (p == NULL || !push_cell(L, o[LUAMP_CELLS_TYPE_OFFSET], p)) return slow_path(L);
    return 1;
}

/// `a[i] = x` for an in-range integer index and a common value (else Swift).
static int array_newindex(lua_State *L) {
    unsigned char *o = object_at(L, LUAMP_MAGIC_ARRAY);
    unsigned char *p = o ? array_cell(L, o) : NULL;
    if (p == NULL || !store_cell(L, o[LUAMP_CELLS_TYPE_OFFSET], p)) return slow_path(L);
    return 0;
}

void luamp_push_sync_fast(lua_State *L, int which, luamp_fast_fn slow) {
    lua_pushlightuserdata(L, (void *)slow);
    switch (which) {
    case LUAMP_FAST_LOCK_ACQUIRE: lua_pushcclosure(L, lock_acquire_fn, 1); return;
    case LUAMP_FAST_RLOCK_ACQUIRE: lua_pushcclosure(L, rlock_acquire_fn, 1); return;
    case LUAMP_FAST_LOCK_RELEASE: lua_pushcclosure(L, lock_release_fn, 1); return;
    case LUAMP_FAST_RLOCK_RELEASE: lua_pushcclosure(L, rlock_release_fn, 1); return;
    case LUAMP_FAST_VALUE_INDEX: lua_pushliteral(L, "value"); lua_pushcclosure(L, value_index, 2); return;
    case LUAMP_FAST_VALUE_NEWINDEX: lua_pushliteral(L, "value"); lua_pushcclosure(L, value_newindex, 2); return;
    case LUAMP_FAST_ARRAY_INDEX: lua_pushcclosure(L, array_index, 1); return;
    case LUAMP_FAST_ARRAY_NEWINDEX: lua_pushcclosure(L, array_newindex, 1); return;
    case LUAMP_FAST_VALUE_ADD: lua_pushcclosure(L, value_add, 1); return;
    default: lua_pushcclosure(L, slow_path, 1); return;
    }
}
