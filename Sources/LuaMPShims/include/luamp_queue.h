// Queue and pipe helpers Swift cannot express: the CPU's spin-wait hint, F_SETPIPE_SZ, pidfd_getfd.
#ifndef LUAMP_QUEUE_H
#define LUAMP_QUEUE_H

#include <stdint.h>

/// The spin-wait hint (`pause` on x86, `yield` on arm64) used while a consumer briefly polls a
/// queue before sleeping. C: an intrinsic/inline asm.
static inline void luamp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Orders every store before it ahead of every store after it, for other processes and for a
/// process killed in between (a compiler barrier on x86, `dmb ish` on arm64). The queue's crash
/// journal needs exactly this, and it costs nothing on x86 (seq_cst stores cost an `xchg` each).
/// C: `__atomic_thread_fence` is a builtin.
static inline void luamp_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
/// Relaxed 64-bit load/store of a shared word (atomic, no ordering). C: builtins.
static inline uint64_t luamp_load64_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void luamp_store64_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/// fcntl(fd, F_SETPIPE_SZ, size): returns the new capacity or -1 (errno). C: F_SETPIPE_SZ is GNU-only.
int luamp_pipe_set_size(int fd, int size);

/// fcntl(fd, F_GETPIPE_SZ): the pipe's capacity or -1. C: GNU-only constant.
int luamp_pipe_get_size(int fd);

/// A duplicate of descriptor `fd` of process `pid` (pidfd_open + pidfd_getfd, O_CLOEXEC), or -1
/// with errno (ENOSYS before Linux 5.6, EPERM without ptrace rights, EBADF if it is closed).
/// C: both are raw syscalls without glibc wrappers on older systems.
int luamp_fd_from_process(int32_t pid, int fd);

/// poll(2) on one descriptor for POLLIN with a millisecond timeout (-1 forever). Returns 1 when
/// readable (or hung up), 0 on timeout, -1 with errno. C: struct pollfd's short fields and macros.
int luamp_poll_in(int fd, int timeout_ms);

#endif
