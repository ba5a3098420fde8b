// Descriptor passing shims: the mailbox socket pair and SCM_RIGHTS send/receive (CMSG macros).
#include "luamp_fdpass.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int luamp_fdpass_pair(int fds[2], int bytes) {
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return -1;
    for (int k = 0; k < 2; k++) {
        if (setsockopt(fds[k], SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
            (void)setsockopt(fds[k], SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);   // capped by wmem_max
    }
    return 0;
}

enum { MAX_FDS = 4 };

ssize_t luamp_fdpass_send(int sock, const void *data, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t r;
    do { r = sendmsg(sock, &m, MSG_DONTWAIT | MSG_NOSIGNAL); } while (r < 0 && errno == EINTR);
    return r;
}

ssize_t luamp_fdpass_recv(int sock, void *data, size_t len, int *fds, int maxfds, int *nfds) {
    struct iovec iov = { .iov_base = data, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)]; struct cmsghdr align; } u;
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    ssize_t r;
    do { r = recvmsg(sock, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    *nfds = 0;
    if (r < 0) return r;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int got[MAX_FDS];
        memcpy(got, CMSG_DATA(c), sizeof(int) * (size_t)(n < MAX_FDS ? n : MAX_FDS));
        for (int i = 0; i < n && i < MAX_FDS; i++) {
            if (*nfds < maxfds) fds[(*nfds)++] = got[i]; else close(got[i]);
        }
    }
    return r;
}
