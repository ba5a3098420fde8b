// The Lua side of the C target: the error trampoline, the traceback handler, interrupt hooks.
#include "luamp_shims.h"
#include "luamp_service.h"
#include <string.h>

static luamp_dispatch_fn swift_dispatch;
static luamp_release_fn swift_release;

void luamp_install_dispatch(luamp_dispatch_fn dispatch, luamp_release_fn release) {
    swift_dispatch = dispatch;
    swift_release = release;
}

static const char *const BOX_META = "luamp.swiftfunction";

typedef struct { void *box; } luamp_box;

static int box_gc(lua_State *L) {
    luamp_box *b = (luamp_box *)lua_touserdata(L, 1);
    if (b && b->box) { swift_release(b->box); b->box = NULL; }
    return 0;
}

int luamp_complete_swift_call(lua_State *L, int n, int argn) {
    if (n >= 0) return n;
    if (n == LUAMP_MEMERR) return luamp_raise_memory_error(L);
    if (n == LUAMP_ARGERROR) {
        const char *extra = lua_tostring(L, -1);
        return luaL_argerror(L, argn, extra ? extra : "?");
    }
    return lua_error(L);
}

/// The trampoline: Swift runs and returns; only then, with no Swift frame left, Lua may raise.
static int trampoline(lua_State *L) {
    luamp_box *b = (luamp_box *)lua_touserdata(L, lua_upvalueindex(1));
    int argn = 0;
    // Every Swift function starts with the memory reserve held (memory_shims.c), or does not
    // start: with memory too short to take it, Lua's memory error is raised before Swift runs.
    if (!luamp_memory_reserve_armed() && !luamp_memory_reserve_arm()) return luamp_raise_memory_error(L);
    int was = luamp_swift_enter();
    luamp_swift_depth++;                         // the pool service waits while Swift runs
    lua_State *caller = luamp_calling_L;
    luamp_calling_L = L;
    int n = swift_dispatch(L, b->box, &argn);
    luamp_calling_L = caller;
    luamp_swift_depth--;
    luamp_zone_restore(was);
    return luamp_complete_swift_call(L, n, argn);
}

void luamp_push_swift_function(lua_State *L, void *box, int nup) {
    luamp_box *b = (luamp_box *)lua_newuserdatauv(L, sizeof(luamp_box), 0);
    b->box = box;
    if (luaL_newmetatable(L, BOX_META)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (nup > 0) lua_insert(L, -(nup + 1));   // box first, then the caller's upvalues
    lua_pushcclosure(L, trampoline, nup + 1);
}

int luamp_error_text(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    if (lua_tostring(L, idx) != NULL) {            // a string or number (converted in place)
        lua_pushvalue(L, idx);
        return 0;
    }
    if (luaL_callmeta(L, idx, "__tostring")) {
        if (lua_type(L, -1) == LUA_TSTRING) return 1;   // its text, no traceback (as lua.c)
        lua_pop(L, 1);
    }
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
    return 0;
}

int luamp_msghandler(lua_State *L) {
    if (luamp_error_text(L, 1)) return 1;
    luaL_traceback(L, L, lua_tostring(L, -1), 1);
    return 1;
}

int luamp_pcall_traceback(lua_State *L, int nargs, int nresults) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, luamp_msghandler);
    lua_insert(L, base);
    int was = luamp_lua_enter();
    int status = lua_pcall(L, nargs, nresults, base);
    luamp_zone_restore(was);
    luamp_after_protected_call(L, status);
    lua_remove(L, base);
    return status;
}

static int tolstring_helper(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

int luamp_ptolstring(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, tolstring_helper);
    lua_pushvalue(L, idx);
    return lua_pcall(L, 1, 1, 0);
}

// ---- interrupts (lua.c's lstop/laction) ----

volatile sig_atomic_t luamp_interrupted = 0;
volatile sig_atomic_t luamp_sigint_count = 0;
static lua_State *volatile interrupt_state = NULL;

static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luamp_interrupted = 0;         // taken: the next blocking call must not raise it again
    luaL_error(L, "interrupted!");
}

static void laction(int sig) {
    int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    (void)sig;
    luamp_interrupted = 1;
    luamp_sigint_count++;
    if (interrupt_state) lua_sethook(interrupt_state, lstop, flag, 1);   // async-signal-safe by design
}

int luamp_take_interrupt(void) {
    if (!luamp_interrupted) return 0;           // the common case: no syscall
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);       // laction cannot run between the two steps
    int v = luamp_interrupted;
    luamp_interrupted = 0;
    lua_State *L = interrupt_state;
    if (v && L && lua_gethook(L) == lstop) lua_sethook(L, NULL, 0, 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return v;
}

void luamp_interrupt_forget_in_child(void) {
    lua_State *L = interrupt_state;
    interrupt_state = NULL;
    luamp_interrupted = 0;
    // Only our own hook: one the script set with debug.sethook is inherited, as a fork should.
    // laction counts before it arms the hook, so with no SIGINT yet there is nothing to remove
    // (and the child skips lua_gethook's code page: one copy-on-write fault less per start).
    if (L && luamp_sigint_count != 0 && lua_gethook(L) == lstop) lua_sethook(L, NULL, 0, 0);
}

void luamp_interrupt_target(lua_State *L) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    interrupt_state = L;
    if (L) {
        luamp_interrupted = 0;
        sa.sa_handler = laction;     // no SA_RESTART: blocking waits return EINTR and check the flag
    } else {
        sa.sa_handler = SIG_DFL;
    }
    sigaction(SIGINT, &sa, NULL);
}

// ---- concatenation under protection (mp.dumps assembles big messages with one copy) ----

static int concat_helper(lua_State *L) {
    lua_concat(L, lua_gettop(L));
    return 1;
}

int luamp_pconcat(lua_State *L, int n) {
    lua_pushcfunction(L, concat_helper);
    lua_insert(L, -(n + 1));
    return lua_pcall(L, n, 1, 0);
}

