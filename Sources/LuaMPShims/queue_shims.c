// Queue and pipe shims: pipe capacity (GNU fcntl), descriptor copy from another process (raw syscalls), poll.
#include "luamp_queue.h"
#include "luamp_shims.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

int luamp_pipe_set_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

int luamp_fd_from_process(int32_t pid, int fd) {
#ifdef SYS_pidfd_getfd
    int pfd = luamp_pidfd_open((pid_t)pid);
    if (pfd < 0) return -1;
    int r = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
    int e = errno;
    close(pfd);
    errno = e;
    return r;   // pidfd_getfd sets O_CLOEXEC on the new descriptor
#else
    (void)pid; (void)fd;
    errno = ENOSYS;
    return -1;
#endif
}

static int poll_one(int fd, short events, int timeout_ms) {
    struct pollfd p = { .fd = fd, .events = events };
    int r = poll(&p, 1, timeout_ms);
    // A signal (the pool service's 5 ms timer, Ctrl-C) ends the slice as a timeout would: the
    // caller's wait loop goes on with the time left. Retrying with the whole timeout would never
    // time out while signals come more often than the timeout.
    if (r < 0 && errno == EINTR) return 0;
    return r > 0 ? 1 : r;
}

int luamp_poll_in(int fd, int timeout_ms) { return poll_one(fd, POLLIN, timeout_ms); }

int luamp_poll_out(int fd, int timeout_ms) { return poll_one(fd, POLLOUT, timeout_ms); }
