/* alarmctl: what a C module can do to SIGALRM, and so to a pool worker's per-item timer (built by
 * Tests/lua/pool_backstop_test.lua). alarmctl.ignore() sets SIG_IGN; alarmctl.block() blocks it in
 * the signal mask; alarmctl.catch() installs a handler that only counts; alarmctl.caught() returns
 * that count. */
#include <lua.h>
#include <lauxlib.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t count;

static void on_alarm(int sig) { (void)sig; count++; }

static int l_ignore(lua_State *L) {
    lua_pushboolean(L, signal(SIGALRM, SIG_IGN) != SIG_ERR);
    return 1;
}

static int l_block(lua_State *L) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    lua_pushboolean(L, sigprocmask(SIG_BLOCK, &set, NULL) == 0);
    return 1;
}

static int l_catch(lua_State *L) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    lua_pushboolean(L, sigaction(SIGALRM, &sa, NULL) == 0);
    return 1;
}

static int l_caught(lua_State *L) { lua_pushinteger(L, count); return 1; }

int luaopen_alarmctl(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"ignore", l_ignore}, {"block", l_block}, {"catch", l_catch}, {"caught", l_caught}, {NULL, NULL}};
    luaL_newlib(L, fns);
    return 1;
}
