// The one spin policy: how a waiter polls, with the CPU's spin hint between polls, before it
// sleeps in the kernel. Every spin loop of the runtime is one of these two (Swift and C alike).
#ifndef LUAMP_SPIN_H
#define LUAMP_SPIN_H

#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include "luamp_sync.h"

/// Polls a busy mutex makes before its locker sleeps (a few microseconds): the holder usually
/// runs on another CPU and releases within nanoseconds, and sleeping in the kernel would cost
/// both sides a futex syscall.
#define LUAMP_SPIN_MUTEX_POLLS 200

/// How long a consumer polls a word in shared memory before it sleeps (nanoseconds), and when
/// it starts yielding its CPU: the last `LUAMP_SPIN_YIELD_NS` of it (why, measured:
/// docs/queues.md, "Performance").
#define LUAMP_SPIN_WORD_NS 30000
#define LUAMP_SPIN_YIELD_NS 25000

/// The spin-wait hint (x86 `pause`, arm `yield`): a compiler builtin Swift cannot call.
static inline void luamp_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// After a `pthread_mutex_trylock` of `m` returned `rc`: while it is `EBUSY`, up to
/// `LUAMP_SPIN_MUTEX_POLLS` times, pause and try again when the mutex reads free (reading never
/// consumes an owner-died state; trylock does, and returns EOWNERDEAD to the caller).
/// Returns the last trylock's result: 0, EOWNERDEAD, or still EBUSY (then sleep).
/// Used by `lock:acquire()`'s C fast path (sync_fast.c) and `RobustMutex.lock`.
static inline int luamp_spin_trylock(pthread_mutex_t *m, int rc) {
    for (int i = 0; rc == EBUSY && i < LUAMP_SPIN_MUTEX_POLLS; i++) {
        luamp_spin_pause();
        if (!luamp_mutex_is_locked(m)) rc = pthread_mutex_trylock(m);
    }
    return rc;
}

/// Polls `*word` (relaxed loads) until it is non-zero or `LUAMP_SPIN_WORD_NS` passed: 64
/// pauses between clock reads, yielding the CPU (`sched_yield`) in the last
/// `LUAMP_SPIN_YIELD_NS` so that on a busy machine a producer sharing this core gets to run.
/// Returns 1 if the word became non-zero. Used by queue consumers before they sleep.
static inline int luamp_spin_until_nonzero64(const uint64_t *word) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t until = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + LUAMP_SPIN_WORD_NS;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (__atomic_load_n(word, __ATOMIC_RELAXED) != 0) return 1;
            luamp_spin_pause();
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        if (now >= until) return 0;
        if (now + LUAMP_SPIN_YIELD_NS >= until) sched_yield();
    }
}

#endif
