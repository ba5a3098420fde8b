// Descriptor passing for pipe ends: a SOCK_SEQPACKET socket pair and SCM_RIGHTS messages.
#ifndef LUAMP_FDPASS_H
#define LUAMP_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

/// A close-on-exec AF_UNIX SOCK_SEQPACKET socket pair in `fds` with send buffers as large as
/// allowed (SO_SNDBUFFORCE, else SO_SNDBUF, of `bytes`). Returns 0 or -1 with errno.
/// C: socket option constants and struct sockaddr handling.
int luamp_fdpass_pair(int fds[2], int bytes);

/// Sends one record (`data`, `len` bytes) carrying the descriptors `fds[0..nfds)` as SCM_RIGHTS on
/// `sock`, without blocking and without SIGPIPE. Returns the bytes sent or -1 with errno
/// (EAGAIN: the socket's buffer is full). C: the CMSG_* macros.
ssize_t luamp_fdpass_send(int sock, const void *data, size_t len, const int *fds, int nfds);

/// Receives one record into `data` (at most `len` bytes) without blocking; descriptors that came
/// with it are stored in `fds` (at most `maxfds`, close-on-exec) and counted in `*nfds` (extra
/// ones are closed). Returns the record's length, or -1 with errno (EAGAIN: nothing waiting).
/// C: the CMSG_* macros.
ssize_t luamp_fdpass_recv(int sock, void *data, size_t len, int *fds, int maxfds, int *nfds);

#endif
