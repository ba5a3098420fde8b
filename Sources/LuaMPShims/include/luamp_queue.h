// Queue and pipe helpers Swift cannot express: store fences, F_SETPIPE_SZ, pidfd_getfd, poll.
#ifndef LUAMP_QUEUE_H
#define LUAMP_QUEUE_H

#include <stdint.h>

/// Orders every store before it ahead of every store after it, for other processes and for a
/// process killed in between (a compiler barrier on x86, `dmb ish` on arm64). The queue's crash
/// journal needs exactly this, and it costs nothing on x86 (seq_cst stores cost an `xchg` each).
/// C: `__atomic_thread_fence` is a builtin.
static inline void luamp_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
/// Relaxed 64-bit load/store of a shared word (atomic, no ordering). C: builtins.
static inline uint64_t luamp_load64_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void luamp_store64_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/// fcntl(fd, F_SETPIPE_SZ, size): returns the new capacity or -1 (errno). Pipes and pools both use
/// it. C: F_SETPIPE_SZ is GNU-only.
int luamp_pipe_set_size(int fd, int size);

/// A duplicate of descriptor `fd` of process `pid` (luamp_pidfd_open + pidfd_getfd, O_CLOEXEC), or -1
/// with errno (ENOSYS before Linux 5.6, EPERM without ptrace rights, EBADF if it is closed).
/// C: both are raw syscalls without glibc wrappers on older systems.
int luamp_fd_from_process(int32_t pid, int fd);

/// poll(2) on one descriptor for POLLIN with a millisecond timeout (-1 forever). Returns 1 when
/// readable (or hung up), 0 on timeout or a signal (the caller's wait loop goes on), -1 with errno.
/// C: struct pollfd's short fields and macros.
int luamp_poll_in(int fd, int timeout_ms);
/// The same for POLLOUT: 1 when writable (the descriptor-passing socket, PipeMailbox).
int luamp_poll_out(int fd, int timeout_ms);

#endif
