// mp inside another interpreter: SIGINT chained in front of the host's handler, and the
// finalizer that runs mp's end-of-script cleanup when the host closes its state.
#include "luamp_host.h"
#include "luamp_shims.h"
#include <signal.h>
#include <string.h>

static int host_mode = 0;
static lua_State *host_main = NULL;          // the main thread of the state that loaded mp
static void (*host_handler)(int) = NULL;     // the host's SIGINT handler mp chains to
static lua_Hook host_hook = NULL;            // the hook that handler armed (lua.c's lstop)

static void chained_sigint(int sig) {
    luamp_interrupted = 1;
    luamp_sigint_count++;
    lua_Hook before = host_main ? lua_gethook(host_main) : NULL;
    if (host_handler) host_handler(sig);
    lua_Hook after = host_main ? lua_gethook(host_main) : NULL;
    if (after != before) host_hook = after;
}

void luamp_host_enter(lua_State *L) {
    if (!host_mode) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
        host_main = lua_tothread(L, -1);
        lua_pop(L, 1);
        host_mode = 1;
    }
    luamp_host_follow_sigint();
}

void luamp_host_follow_sigint(void) {
    if (!host_mode) return;
    struct sigaction cur;
    if (sigaction(SIGINT, NULL, &cur) != 0) return;
    if (cur.sa_flags & SA_SIGINFO) return;           // not a plain handler: leave it alone
    void (*h)(int) = cur.sa_handler;
    if (h == chained_sigint || h == SIG_DFL || h == SIG_IGN) return;
    host_handler = h;
    host_hook = NULL;
    cur.sa_handler = chained_sigint;
    cur.sa_flags &= ~SA_RESTART;                     // blocking waits return EINTR and look at the flag
    sigaction(SIGINT, &cur, NULL);
}

int luamp_host_claim_interrupt(void) {
    if (!host_mode || host_hook == NULL) return 1;
    lua_Hook armed = host_hook;
    host_hook = NULL;
    if (lua_gethook(host_main) != armed) return 0;   // already raised by the host's hook
    lua_sethook(host_main, NULL, 0, 0);
    return 1;
}

typedef struct { int armed; } finalizer_box;

static int finalizer_gc(lua_State *L) {
    finalizer_box *b = (finalizer_box *)lua_touserdata(L, 1);
    if (b == NULL || !b->armed) return 0;
    b->armed = 0;
    lua_CFunction fn = lua_tocfunction(L, lua_upvalueindex(1));
    if (fn) fn(L);                                   // mp's cleanup (never raises)
    return 0;
}

static int renew_finalizer(lua_State *L) {
    const char *key = lua_tostring(L, 1);
    lua_CFunction fn = lua_tocfunction(L, 2);
    if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TUSERDATA) {
        finalizer_box *old = (finalizer_box *)lua_touserdata(L, -1);
        old->armed = 0;
    }
    lua_pop(L, 1);
    finalizer_box *b = (finalizer_box *)lua_newuserdatauv(L, sizeof *b, 0);
    b->armed = 1;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, fn);
    lua_pushcclosure(L, finalizer_gc, 1);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);                         // marks it for finalization: the newest one
    lua_setfield(L, LUA_REGISTRYINDEX, key);
    return 0;
}

int luamp_host_renew_finalizer(lua_State *L, const char *key, lua_CFunction fn) {
    lua_pushcfunction(L, renew_finalizer);
    lua_pushstring(L, key);
    lua_pushcfunction(L, fn);
    int status = lua_pcall(L, 2, 0, 0);
    if (status != LUA_OK) lua_pop(L, 1);
    return status;
}
