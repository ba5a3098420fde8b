// The background service of pools in pure Lua: a POSIX timer whose signal arms a one-shot Lua hook.
#ifndef LUAMP_SERVICE_H
#define LUAMP_SERVICE_H

#include <lua.h>

/// Swift functions (trampolines) on the C stack right now. The service runs only at 0, i.e.
/// when nothing but Lua (and C library code) is running: no mp operation is half done.
/// The trampolines count; a forked child starts again at 0 (`luamp_service_forget_in_child`).
extern int luamp_swift_depth;

/// What the hook calls (Swift): the pools' non-blocking service, on the main thread `L`.
typedef void (*luamp_service_fn)(lua_State *L);

/// Turns the service on for the runtime of `L` (its main thread): a `timer_create(CLOCK_MONOTONIC)`
/// timer sends `SIGRTMIN + 4` (`SIGEV_THREAD_ID`: to this thread) every `period_us`; the handler
/// (SA_RESTART, SIGINT blocked while it runs) only arms a count hook of one instruction on the
/// main thread, unless another hook is set there (Ctrl-C's, `debug.sethook`'s: that tick is
/// skipped). The hook clears itself and calls `fn(L)` when `luamp_swift_depth` is 0.
/// Returns 1 when on (already or now), 0 when it cannot be (timer failed, or another runtime
/// of this process has it). No syscall when already on.
int luamp_service_start(lua_State *L, luamp_service_fn fn, long period_us);

/// Stops the timer (the hook, if armed, then does nothing). No syscall when already off.
void luamp_service_stop(void);

/// Stops the service and forgets the runtime of `L` if it had it (its state is closing).
void luamp_service_release(lua_State *L);

/// In a forked child: the parent's timer is not inherited; forget its state and hook, and
/// start counting Swift frames at 0 (the frames below the child's body are the parent's).
void luamp_service_forget_in_child(void);

#endif
