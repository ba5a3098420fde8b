// Cross-process synchronization primitives Swift cannot call directly: futex (variadic syscall),
// pthread_mutex_clocklock (GNU-only), process liveness (pidfd), and C11 atomics on shared memory.
#ifndef LUAMP_SYNC_H
#define LUAMP_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>
#include <lua.h>

// ---- fast Lua entry points for hot methods ----

/// A Swift `@convention(c)` function with no captured context, called from Lua without the
/// boxed-closure trampoline (no retain/release per call). Same contract as luamp_dispatch_fn:
/// returns results pushed (>= 0), LUAMP_RAISE (error value on top) or LUAMP_ARGERROR.
typedef int (*luamp_fast_fn)(lua_State *L, int *argn);

/// Pushes a C closure calling `f` (kept as a light userdata upvalue); it raises after `f`
/// returned, so no Lua error ever unwinds a Swift frame. C because lua_error lives here.
void luamp_push_fast_function(lua_State *L, luamp_fast_fn f);

/// The closure `luamp_push_fast_function` pushes: calls the `luamp_fast_fn` in upvalue 1 and
/// raises after it returned. Also the slow path of every C fast path (sync_fast.c).
int luamp_fast_trampoline(lua_State *L);

#include "luamp_layouts.h"

/// Which hot path `luamp_push_sync_fast` makes (sync_fast.c).
enum {
    LUAMP_FAST_LOCK_ACQUIRE = 1, LUAMP_FAST_RLOCK_ACQUIRE, LUAMP_FAST_LOCK_RELEASE, LUAMP_FAST_RLOCK_RELEASE,
    LUAMP_FAST_VALUE_INDEX, LUAMP_FAST_VALUE_NEWINDEX, LUAMP_FAST_ARRAY_INDEX, LUAMP_FAST_ARRAY_NEWINDEX,
    LUAMP_FAST_VALUE_ADD,
};

/// Pushes the C fast path `which` (a lua_CFunction doing the common case without Swift) that
/// calls `slow` (the full Swift implementation, same protocol as luamp_push_fast_function) for
/// everything else. C because the fast path must not pay for a Swift frame.
void luamp_push_sync_fast(lua_State *L, int which, luamp_fast_fn slow);

/// Tells the C fast paths where this process tree's arena is mapped (inherited across fork).
void luamp_sync_fast_set_arena(void *base, uint64_t size);

// ---- futex (syscall(2) is variadic, so Swift cannot call it) ----

/// FUTEX_WAIT (shared, not PRIVATE: the word lives in MAP_SHARED memory) while `*word == expected`,
/// for at most `timeout_ns` (relative; < 0 = forever). Returns 0 when woken, else -1 with errno
/// EAGAIN (value differed), ETIMEDOUT or EINTR.
int luamp_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns);

/// FUTEX_WAKE (shared): wakes up to `n` waiters on `word`. Returns how many were woken, or -1.
int luamp_futex_wake(uint32_t *word, int n);

// ---- robust mutex helpers ----

/// pthread_mutex_clocklock with CLOCK_MONOTONIC and an absolute deadline (GNU-only name).
/// Returns the pthread error code (0, ETIMEDOUT, EOWNERDEAD, ENOTRECOVERABLE, EDEADLK, ...).
int luamp_mutex_clocklock(pthread_mutex_t *m, int64_t deadline_sec, int64_t deadline_nsec);

/// Initializes `m` as a process-shared, robust mutex of the given type
/// (PTHREAD_MUTEX_NORMAL/ERRORCHECK/RECURSIVE). Returns the first failing pthread error, or 0.
/// C because the attribute dance needs several macros (PTHREAD_MUTEX_ROBUST, _PSHARED).
int luamp_mutex_init_robust(pthread_mutex_t *m, int type);

/// The PTHREAD_MUTEX_* type constants (macros/enums in glibc's headers).
static inline int luamp_mutex_type_normal(void) { return PTHREAD_MUTEX_NORMAL; }
static inline int luamp_mutex_type_errorcheck(void) { return PTHREAD_MUTEX_ERRORCHECK; }
static inline int luamp_mutex_type_recursive(void) { return PTHREAD_MUTEX_RECURSIVE; }

/// 1 if some thread holds `m` (the owner TID bits of glibc's futex word are set), without
/// touching it: unlike trylock this never consumes an owner-died state. C because the word is a
/// glibc-internal field (`__data.__lock`) and FUTEX_TID_MASK a kernel macro.
static inline int luamp_mutex_is_locked(pthread_mutex_t *m) {
    return (__atomic_load_n((unsigned int *)&m->__data.__lock, __ATOMIC_SEQ_CST) & 0x3fffffffu) != 0;
}

// ---- process liveness ----

/// 1 if `pid` is a live process, 0 if it is gone or a zombie (exited, not yet reaped): a pidfd
/// becomes readable at exit, which kill(pid, 0) cannot tell. C: struct pollfd (pidfd from luamp_pidfd_open).
int luamp_pid_alive(int32_t pid);

// ---- C11 atomics on words in shared memory (Swift's Atomic cannot wrap foreign memory) ----

static inline uint32_t luamp_atomic_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void luamp_atomic_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t luamp_atomic_add32(uint32_t *p, uint32_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline uint32_t luamp_atomic_sub32(uint32_t *p, uint32_t v) { return __atomic_sub_fetch(p, v, __ATOMIC_SEQ_CST); }
/// Compare-and-swap; returns 1 on success (and *p == desired), 0 otherwise.
static inline int luamp_atomic_cas32(uint32_t *p, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline uint64_t luamp_atomic_load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void luamp_atomic_store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t luamp_atomic_add64(uint64_t *p, uint64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int luamp_atomic_cas64(uint64_t *p, uint64_t expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
/// Relaxed 32-bit access for fields a mutex already orders (a lock's owner pid and depth):
/// no fence, but never torn, so other processes may peek at them.
static inline uint32_t luamp_relaxed_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void luamp_relaxed_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
/// Acquire loads / release stores for Value and Array cells: never torn, ordered like a
/// message hand-off (on x86 plain moves, no fence).
static inline uint8_t luamp_cell_load8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void luamp_cell_store8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint16_t luamp_cell_load16(const uint16_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void luamp_cell_store16(uint16_t *p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint32_t luamp_cell_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void luamp_cell_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t luamp_cell_load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void luamp_cell_store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

// ---- shared mappings ----

/// mmap(MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE) of `size` bytes; NULL (errno set) on failure.
/// C because MAP_NORESERVE/MAP_ANONYMOUS are Linux macros. The mapping is inherited across fork.
void *luamp_map_shared(size_t size);

/// Gives the pages of [p, p+len) (page-aligned) back to the system: madvise(MADV_REMOVE) frees the
/// shmem backing, so RSS and Shmem drop; later reads see zeroes. Returns 0 or -1 (errno).
int luamp_release_pages(void *p, size_t len);

/// Faults in the pages of [p, p+len) (page-aligned) writable in one call (MADV_POPULATE_WRITE,
/// Linux 5.14+), instead of one page fault per page while copying. Returns 0 or -1 (errno;
/// EINVAL on older kernels: the caller just copies and faults as before).
int luamp_populate_pages(void *p, size_t len);

#endif
