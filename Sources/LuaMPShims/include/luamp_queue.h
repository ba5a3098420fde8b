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
