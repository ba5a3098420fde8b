// Cross-process synchronization in C: futex syscalls, liveness by pidfd, clocklock, robust mutex attributes, mmap flags.
#include "luamp_sync.h"
#include "luamp_shims.h"
#include "luamp_service.h"
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

int luamp_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    return (int)syscall(SYS_futex, word, FUTEX_WAIT, expected, tp, NULL, 0);
}

int luamp_futex_wake(uint32_t *word, int n) {
    return (int)syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int luamp_mutex_clocklock(pthread_mutex_t *m, int64_t deadline_sec, int64_t deadline_nsec) {
    struct timespec ts = { .tv_sec = (time_t)deadline_sec, .tv_nsec = (long)deadline_nsec };
    return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
}

int luamp_mutex_init_robust(pthread_mutex_t *m, int type) {
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc) return rc;
    if ((rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) == 0 &&
        (rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST)) == 0 &&
        (rc = pthread_mutexattr_settype(&a, type)) == 0)
        rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

int luamp_pid_alive(int32_t pid) {
    if (pid <= 0) return 0;
    int fd = luamp_pidfd_open((pid_t)pid);
    if (fd < 0) {
        if (errno == ESRCH) return 0;
        return kill((pid_t)pid, 0) == 0 || errno == EPERM;   // no pidfd support: best effort
    }
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, 0);
    close(fd);
    return !(r > 0 && (p.revents & POLLIN));
}

void *luamp_map_shared(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

int luamp_release_pages(void *p, size_t len) {
    return madvise(p, len, MADV_REMOVE);
}

int luamp_populate_pages(void *p, size_t len) {
#ifdef MADV_POPULATE_WRITE
    return madvise(p, len, MADV_POPULATE_WRITE);
#else
    (void)p; (void)len;
    errno = EINVAL;
    return -1;
#endif
}

int luamp_fast_trampoline(lua_State *L) {
    luamp_fast_fn f = (luamp_fast_fn)lua_touserdata(L, lua_upvalueindex(1));
    int argn = 0;
    if (!luamp_memory_reserve_armed() && !luamp_memory_reserve_arm()) return luamp_raise_memory_error(L);
    int was = luamp_swift_enter();           // as the trampoline does (memory_shims.c)
    luamp_swift_depth++;
    lua_State *caller = luamp_calling_L;
    luamp_calling_L = L;
    int n = f(L, &argn);
    luamp_calling_L = caller;
    luamp_swift_depth--;
    luamp_zone_restore(was);
    return luamp_complete_swift_call(L, n, argn);
}

void luamp_push_fast_function(lua_State *L, luamp_fast_fn f) {
    lua_pushlightuserdata(L, (void *)f);
    lua_pushcclosure(L, luamp_fast_trampoline, 1);
}
