// The C side of the fork server: fd passing (CMSG_* macros), GNU socket flags, posix_spawn of this executable.
#ifndef LUAMP_FORKSERVER_H
#define LUAMP_FORKSERVER_H

#include <sys/types.h>

/// socketpair(AF_UNIX, SOCK_SEQPACKET or SOCK_STREAM | SOCK_CLOEXEC): C because the type flags
/// are a GNU enum Swift imports as a struct. Returns 0 or -1 with errno.
int luamp_socketpair(int seqpacket, int sv[2]);

/// Sends one byte `tag` and the descriptor `fd` (SCM_RIGHTS) with MSG_NOSIGNAL: C because the
/// CMSG_* helpers are macros. Returns 1, or -1 with errno.
int luamp_send_fd(int sock, unsigned char tag, int fd);

/// Receives what luamp_send_fd sent: the tag byte and the descriptor (close-on-exec), or
/// *fd = -1 when none came. Returns 1, 0 at end of file, -1 with errno (EINTR retried).
int luamp_recv_fd(int sock, unsigned char *tag, int *fd);

/// posix_spawn of this executable (/proc/self/exe) with `argv`, this process's environment
/// minus every `LUAMP_FORK_SERVER*` variable plus `marker` ("NAME=value"), `fd` dup'ed to
/// `target` (without close-on-exec), signal mask emptied and signal dispositions defaulted.
/// Safe in a multi-threaded process (no fork). C because posix_spawn's attribute and
/// file-action setup is macro- and sigset-heavy. Returns the pid, or -1 with errno.
pid_t luamp_spawn_self(char *const argv[], const char *marker, int fd, int target);

/// Sets FD_CLOEXEC on fd. Returns 0 or -1.
int luamp_set_cloexec(int fd);

/// Threads of process `pid` (the Threads: line of /proc/PID/status), or -1.
int luamp_thread_count_of(pid_t pid);

#endif
