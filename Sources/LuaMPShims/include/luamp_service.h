// The background service of pools in pure Lua: a POSIX timer whose signal arms a one-shot Lua hook.
#ifndef LUAMP_SERVICE_H
#define LUAMP_SERVICE_H

#include <lua.h>

/// Swift functions (trampolines) on this thread's C stack right now. The service runs only at 0, i.e.
/// when nothing but Lua (and C library code) is running: no mp operation is half done.
/// The trampolines count; a forked child starts again at 0 (`luamp_service_forget_in_child`).
extern __thread int luamp_swift_depth;

/// The Lua thread whose Swift function runs now on this thread (innermost; NULL in pure Lua).
/// The trampolines set and restore it; `luamp_service_poll` runs the service on it.
extern __thread lua_State *luamp_calling_L;

/// Pool calls (Lua-visible pool functions, host waits that run pools, service rounds) on the
/// C stack of this thread: the service never runs from a wait inside one (the pool's state may
/// be half changed there).
extern __thread int luamp_pool_calls;

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

/// 1 while the service is on (pools of this process have work): waits sleep in short slices.
int luamp_service_is_on(void);

/// Called by the one wait loop (`Deadline.wait`) between its slices, inside a Swift function:
/// when the timer fired since the last round, no pool call is on this thread's stack and the
/// calling Lua thread belongs to the service's runtime, runs one round (`fn`) on that thread.
/// So pools keep moving while the host blocks on a queue, lock, event, join or pipe.
void luamp_service_poll(void);

/// For an app waiting outside Lua (the REPL at its prompt): runs one round on `L` when the timer
/// fired since the last one, as the hook would. No-op while a Swift function runs.
void luamp_service_idle(lua_State *L);

/// A pool call on thread `L` left work outstanding: when `L` is a coroutine, the timer's signal
/// arms the hook on it too (besides the main thread), so pure Lua inside the coroutine that
/// submitted keeps the pools moving. `L` stays anchored in the registry until another coroutine
/// replaces it or the runtime releases the service. Needs the memory reserve (call from Swift).
void luamp_service_note_thread(lua_State *L);

/// Brackets a pool call (`luamp_pool_calls`).
void luamp_pool_call_enter(void);
void luamp_pool_call_leave(void);

/// Stops the timer (the hook, if armed, then does nothing). No syscall when already off.
void luamp_service_stop(void);

/// Stops the service and forgets the runtime of `L` if it had it (its state is closing).
void luamp_service_release(lua_State *L);

/// In a forked child: the parent's timer is not inherited; forget its state and hook, and
/// start counting Swift frames at 0 (the frames below the child's body are the parent's).
void luamp_service_forget_in_child(void);

#endif
