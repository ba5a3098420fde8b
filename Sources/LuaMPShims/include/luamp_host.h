// mp inside another interpreter (mp.so loaded by the stock lua5.4): Ctrl-C and the end of the state.
#ifndef LUAMP_HOST_H
#define LUAMP_HOST_H

#include <lua.h>

/// Enters host mode, once per process: `L` is the state that loaded mp.so (its main thread is
/// what `lua.c` arms its Ctrl-C hook on). From then on luamp_host_follow_sigint keeps mp's
/// SIGINT flag chained in front of the host's handler. C: sigaction's handler union.
void luamp_host_enter(lua_State *L);

/// In host mode (a no-op otherwise): if the host has installed its own SIGINT handler since
/// the last call (lua.c installs one around every chunk it runs), puts mp's in front of it:
/// a SIGINT then sets mp's interrupt flag and calls the host's handler (lua.c's arms its
/// "interrupted!" hook and restores the default action, so a second Ctrl-C kills, as in lua).
/// Blocking waits call it before they sleep, so Ctrl-C wakes them.
void luamp_host_follow_sigint(void);

/// In host mode, after a wait took the interrupt flag: 1 if the Ctrl-C is still undelivered
/// (the host's hook is still armed: it is removed, and the wait raises "interrupted!" itself),
/// 0 if the host's hook already raised it in Lua code (the flag was stale: the wait goes on).
/// Outside host mode: 1.
int luamp_host_claim_interrupt(void);

/// Pushes a userdata whose `__gc` calls `fn(L)` once (mp's end-of-script cleanup when the host
/// closes the state), stores it in the registry under `key` and disarms the one stored there
/// before. Renewing it at every process start keeps it the last object marked for
/// finalization, so lua_close runs it first (before the Process, Pool and Queue finalizers).
/// Runs under lua_pcall (it allocates); returns a Lua status. Stack: [-0, +0].
int luamp_host_renew_finalizer(lua_State *L, const char *key, lua_CFunction fn);

#endif
