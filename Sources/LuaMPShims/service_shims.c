// The background service of pools in pure Lua: a POSIX timer whose signal arms a one-shot Lua hook (as Ctrl-C's does).
#include "luamp_service.h"
#include "luamp_shims.h"
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

__attribute__((tls_model("initial-exec"))) __thread int luamp_swift_depth = 0;
// Per thread: runtimes on other threads of an embedding app never see these.
__attribute__((tls_model("initial-exec"))) __thread lua_State *luamp_calling_L = NULL;
__attribute__((tls_model("initial-exec"))) __thread int luamp_pool_calls = 0;

static lua_State *volatile service_L = NULL;      // the main thread of the service's runtime
static lua_State *volatile service_co = NULL;     // the coroutine that last left pool work outstanding
static char co_anchor;                            // its registry key (it stays alive while noted)
static luamp_service_fn volatile service_fn = NULL;
static volatile sig_atomic_t service_on = 0;
static volatile sig_atomic_t service_due = 0;
static timer_t service_timer;
static pid_t timer_owner = 0;          // the process that created service_timer (fork does not copy timers)

static int service_signal(void) { return SIGRTMIN + 4; }

/// The main thread of `L`'s state (uses one stack slot; the caller ensures it).
static lua_State *main_thread(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    return main;
}

/// True when `L` is a thread of the service's runtime.
static int in_service_runtime(lua_State *L) {
    if (L == service_L || L == service_co) return 1;
    return lua_checkstack(L, 1) && main_thread(L) == service_L;
}

/// One round of the service on `L` when the timer fired since the last one and no pool call
/// is on this thread's stack. Counted as a pool call itself: a wait inside it (a finalizer's)
/// never starts another round. The caller holds the memory reserve and is in Swift's zone.
static void run_due(lua_State *L) {
    if (!service_on || !service_due || luamp_pool_calls != 0 || !L) return;
    luamp_service_fn fn = service_fn;
    // The service's runtime only, with room for its temporaries (lua_checkstack never raises).
    if (!fn || !lua_checkstack(L, 40) || !in_service_runtime(L)) return;
    service_due = 0;
    luamp_pool_calls++;
    fn(L);
    luamp_pool_calls--;
}

/// From Lua (the hook) or an idle app (no Swift function running): as the trampoline does,
/// Swift runs with the memory reserve held, or not at all.
static void run_from_lua(lua_State *L) {
    if (luamp_swift_depth != 0) return;
    if (!luamp_memory_reserve_armed() && !luamp_memory_reserve_arm()) return;
    int was = luamp_swift_enter();
    luamp_swift_depth++;
    run_due(L);
    luamp_swift_depth--;
    luamp_zone_restore(was);
}

static void service_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    run_from_lua(L);
}

int luamp_service_is_on(void) { return service_on; }

void luamp_pool_call_enter(void) { luamp_pool_calls++; }
void luamp_pool_call_leave(void) { luamp_pool_calls--; }

void luamp_service_poll(void) { run_due(luamp_calling_L); }

void luamp_service_idle(lua_State *L) { run_from_lua(L); }

void luamp_service_note_thread(lua_State *L) {
    if (L == service_L || L == service_co || !lua_checkstack(L, 1)) return;
    if (lua_pushthread(L)) { lua_pop(L, 1); return; }   // the main thread: always armed
    service_co = L;                                     // before the old one loses its anchor
    lua_rawsetp(L, LUA_REGISTRYINDEX, &co_anchor);
}

/// Arms the one-shot hook on `L` unless another hook is set there (Ctrl-C's, the script's own).
static void arm(lua_State *L) {
    lua_Hook h = lua_gethook(L);
    if (h == NULL || h == service_hook)
        lua_sethook(L, service_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);   // async-signal-safe by design
}

static void on_service_signal(int sig) {
    (void)sig;
    lua_State *L = service_L;
    if (!service_on || !L) return;
    int saved = errno;
    service_due = 1;                           // a wait in Swift runs the round (luamp_service_poll)
    arm(L);
    lua_State *co = service_co;
    if (co) arm(co);                           // pure Lua inside the coroutine that submitted
    errno = saved;
}

static int set_period(long period_us) {
    struct itimerspec it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = period_us / 1000000;
    it.it_value.tv_nsec = (period_us % 1000000) * 1000;
    it.it_interval = it.it_value;
    return timer_settime(service_timer, 0, &it, NULL);
}

int luamp_service_start(lua_State *L, luamp_service_fn fn, long period_us) {
    if (service_on) return 1;
    lua_State *main = main_thread(L);
    if (!main || (service_L && service_L != main)) return 0;
    pid_t me = getpid();
    if (timer_owner != me) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_service_signal;
        sa.sa_flags = SA_RESTART;              // other code's blocking calls just go on
        sigemptyset(&sa.sa_mask);
        sigaddset(&sa.sa_mask, SIGINT);        // Ctrl-C's handler never runs between our two steps
        if (sigaction(service_signal(), &sa, NULL) != 0) return 0;
        struct sigevent ev;
        memset(&ev, 0, sizeof ev);
        ev.sigev_notify = SIGEV_THREAD_ID;     // a signal to this thread, never a thread of its own
        ev.sigev_signo = service_signal();
        ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
        if (timer_create(CLOCK_MONOTONIC, &ev, &service_timer) != 0) return 0;
        timer_owner = me;
    }
    service_L = main;
    service_fn = fn;
    service_on = 1;
    if (set_period(period_us) != 0) { service_on = 0; return 0; }
    return 1;
}

void luamp_service_stop(void) {
    if (!service_on) return;
    service_on = 0;
    struct itimerspec off;
    memset(&off, 0, sizeof off);
    if (timer_owner == getpid()) (void)timer_settime(service_timer, 0, &off, NULL);
}

void luamp_service_release(lua_State *L) {
    lua_State *main = main_thread(L);
    if (main != service_L) return;
    luamp_service_stop();
    if (lua_gethook(main) == service_hook) lua_sethook(main, NULL, 0, 0);
    lua_State *co = service_co;
    if (co && lua_gethook(co) == service_hook) lua_sethook(co, NULL, 0, 0);
    service_co = NULL;
    if (lua_checkstack(L, 1)) { lua_pushnil(L); lua_rawsetp(L, LUA_REGISTRYINDEX, &co_anchor); }
    service_L = NULL;
}

void luamp_service_forget_in_child(void) {
    lua_State *L = service_L;
    service_on = 0;
    service_due = 0;
    service_L = NULL;
    service_co = NULL;                         // the anchor goes with the child's state
    luamp_swift_depth = 0;
    luamp_pool_calls = 0;                      // the parent's pool frames below never return here
    if (L && lua_gethook(L) == service_hook) lua_sethook(L, NULL, 0, 0);
}
