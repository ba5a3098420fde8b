// Out of memory without a crash: Lua's allocator with an emergency reserve, and Lua's own memory error raised for Swift.
#include "luamp_shims.h"
#include <pthread.h>
#include <stdlib.h>

// Swift cannot fail an allocation gracefully (its runtime aborts), and the error path after
// Lua runs out of memory allocates (the message, the report). So luamp keeps 4 MiB malloc'd
// but untouched (no RAM: under `ulimit -v` it is budget, not pages) and gives it
// back at the moment memory runs out while Swift code is on the C stack, so that code can
// finish and raise Lua's memory error cleanly. Pure Lua code running out of memory does not
// spend it: Lua raises as it always does, and the reserve is released when that error reaches
// Swift (luamp_pcall*), before Swift formats anything.

#define RESERVE_SIZE ((size_t)4 << 20)

// Both per thread: they describe this thread's C stack, and runtimes on several threads of an
// embedding app must not see each other's (each thread that runs Lua holds its own reserve,
// freed when the thread ends).
__attribute__((tls_model("initial-exec"))) __thread void *luamp_reserve_block = NULL;
// 1 while a Swift frame is the innermost non-Lua code on the C stack (a Swift function called
// through the trampoline, or Swift code that has not entered Lua); 0 while Lua code runs under a
// protected call made from Swift.
static __attribute__((tls_model("initial-exec"))) __thread int swift_on_top = 1;

#define reserve luamp_reserve_block

static pthread_key_t reserve_key;
static pthread_once_t reserve_once = PTHREAD_ONCE_INIT;
static void free_thread_reserve(void *p) { free(p); }
static void make_reserve_key(void) { (void)pthread_key_create(&reserve_key, free_thread_reserve); }

int luamp_memory_reserve_arm(void) {
    if (reserve) return 1;
    (void)pthread_once(&reserve_once, make_reserve_key);
    // malloc, not mmap: after a spike, freed memory often sits in malloc's heap, not with the
    // kernel, so a fresh mapping could fail where malloc still finds room; and what free gives
    // back is exactly what the Swift error path's mallocs can use.
    reserve = malloc(RESERVE_SIZE);
    (void)pthread_setspecific(reserve_key, reserve);   // freed if the thread ends holding it
    return reserve != NULL;
}

void luamp_memory_reserve_release(void) {
    if (reserve) {
        free(reserve);
        reserve = NULL;
        (void)pthread_setspecific(reserve_key, NULL);
    }
}


// A failed allocation: inside Swift's frames a failure would raise over them (or panic outside
// any pcall), so the reserve is spent and the allocation tried again, letting the Swift code go
// on. Out of line, so the allocator's common path is as short as lauxlib's l_alloc.
__attribute__((noinline, cold))
static void *luamp_alloc_failed(void *ptr, size_t nsize) {
    if (!swift_on_top || !reserve) return NULL;
    luamp_memory_reserve_release();
    return realloc(ptr, nsize);
}

static void *luamp_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud; (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (__builtin_expect(p != NULL, 1)) return p;
    return luamp_alloc_failed(ptr, nsize);
}

void luamp_use_allocator(lua_State *L) {
    lua_setallocf(L, luamp_alloc, NULL);
    (void)luamp_memory_reserve_arm();
}

int luamp_swift_enter(void) {
    int was = swift_on_top;
    swift_on_top = 1;
    return was;
}

int luamp_lua_enter(void) {
    int was = swift_on_top;
    swift_on_top = 0;
    return was;
}

void luamp_zone_restore(int was) { swift_on_top = was; }

void luamp_after_protected_call(lua_State *L, int status) {
    if (status == LUA_ERRMEM) {
        // Back in Swift with memory exhausted: collect what the failed call left behind and
        // give Swift the reserve for reporting the error (rearmed at the next Swift call).
        lua_gc(L, LUA_GCCOLLECT);
        luamp_memory_reserve_release();
    }
}

int luamp_raise_memory_error(lua_State *L) {
    // Lua has no API to raise LUA_ERRMEM. A block no allocator can provide makes Lua do it
    // itself, exactly as for any failed allocation: an emergency collection, then
    // luaD_throw(LUA_ERRMEM) with its preallocated "not enough memory" message (so pcall
    // returns false, "not enough memory", and no message handler runs, as in lua).
    int was = luamp_lua_enter();                 // do not spend the reserve on this request
    lua_newuserdatauv(L, (size_t)1 << 62, 0);
    luamp_zone_restore(was);                     // not reached
    return lua_error(L);
}

int luamp_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    int was = luamp_lua_enter();
    int status = lua_pcall(L, nargs, nresults, msgh);
    luamp_zone_restore(was);
    luamp_after_protected_call(L, status);
    return status;
}

// ---- allocations Swift asks for that may be big: under a protected call ----

static int createtable_helper(lua_State *L) {
    lua_createtable(L, (int)lua_tointeger(L, 1), (int)lua_tointeger(L, 2));
    return 1;
}

static int pushlstring_helper(lua_State *L) {
    lua_pushlstring(L, (const char *)lua_touserdata(L, 1), (size_t)lua_tointeger(L, 2));
    return 1;
}

// Runs the helper with two arguments already pushed; leaves its result, or nothing.
static int protected_helper(lua_State *L) {
    int was = luamp_lua_enter();                 // a failure here is reported, not cushioned
    int status = lua_pcall(L, 2, 1, 0);
    luamp_zone_restore(was);
    if (status != LUA_OK) {
        lua_pop(L, 1);
        if (status == LUA_ERRMEM) luamp_memory_reserve_release();   // room for the error path
    }
    return status;
}

int luamp_pcreatetable(lua_State *L, int narr, int nrec) {
    lua_pushcfunction(L, createtable_helper);
    lua_pushinteger(L, narr);
    lua_pushinteger(L, nrec);
    return protected_helper(L);
}

int luamp_ppushlstring(lua_State *L, const char *s, size_t len) {
    lua_pushcfunction(L, pushlstring_helper);
    lua_pushlightuserdata(L, (void *)s);
    lua_pushinteger(L, (lua_Integer)len);
    return protected_helper(L);
}
