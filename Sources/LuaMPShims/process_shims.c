// Process shims: the fork itself and everything between fork() and the child's first Swift/Lua step.
#include "luamp_shims.h"
#include "luamp_service.h"
#include <stdlib.h>
#include <fcntl.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>

// This process's pid and fork generation for hot paths (CurrentProcess, sync_fast.c), kept
// current by pthread_atfork handlers. C, next to luamp_fork: the child handler then touches no
// Swift code or data, so it adds no copy-on-write faults to every start.
uint32_t luamp_self_pid_value;
uint64_t luamp_fork_generation_value;

static void track_fork_prepare(void) { luamp_fork_generation_value++; }
static void track_fork_child(void) { luamp_self_pid_value = (uint32_t)getpid(); }

int luamp_track_pid_across_fork(void) {
    luamp_self_pid_value = (uint32_t)getpid();
    return pthread_atfork(track_fork_prepare, NULL, track_fork_child);
}

/// Sets every standard signal (1–31) to its default action except SIGPIPE (ignored: channels
/// handle EPIPE) and, when `ignore_sigint`, SIGINT (ignored: a pool worker), then unblocks all
/// signals. Ignoring SIGINT before the unblock discards one already pending, so a Ctrl-C that
/// came during the fork never kills such a child. Real-time signals (never used by luamp) keep
/// their disposition: resetting them too would double the syscalls of every start.
/// C because it loops over raw signal numbers with sigaction.
static void reset_signals_in_child(int ignore_sigint) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    for (int sig = 1; sig < 32; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        int ignore = sig == SIGPIPE || (sig == SIGINT && ignore_sigint);
        sa.sa_handler = ignore ? SIG_IGN : SIG_DFL;
        (void)sigaction(sig, &sa, NULL);   // EINVAL for the few numbers glibc reserves: harmless
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

// Descriptors the parent holds for its children (pidfds, status pipes, pool pipes): closed in
// every new child, since they belong to its siblings. The first 4096 live in a fixed C array
// (touching no heap keeps the copy-on-write faults after each fork down); past that the list
// moves to a heap array that doubles as needed, so no descriptor ever escapes the list.
enum { HELD_STATIC = 4096 };
static int held_static[HELD_STATIC];
static int *held_fds = held_static;
static int held_capacity = HELD_STATIC;
static int held_count;

int luamp_hold_reserve(int n) {
    if (n <= held_capacity - held_count) return 0;
    long want = (long)held_count + n, cap = held_capacity;
    while (cap < want) cap *= 2;
    if (cap > (1L << 28)) { errno = EMFILE; return -1; }
    int *grown = malloc((size_t)cap * sizeof *grown);
    if (grown == NULL) { errno = ENOMEM; return -1; }
    memcpy(grown, held_fds, (size_t)held_count * sizeof *grown);
    if (held_fds != held_static) free(held_fds);
    held_fds = grown;
    held_capacity = (int)cap;
    return 0;
}

int luamp_hold_fd(int fd) {
    if (luamp_hold_reserve(1) != 0) return -1;
    held_fds[held_count++] = fd;
    return 0;
}

void luamp_release_fd(int fd) {
    for (int i = held_count - 1; i >= 0; i--) {
        if (held_fds[i] == fd) { held_fds[i] = held_fds[--held_count]; return; }
    }
}

pid_t luamp_fork(int ignore_sigint) {
    fflush(NULL);
    pid_t parent = getpid();
    // All signals blocked across the fork: a Ctrl-C arriving before the child has reset its
    // handlers would otherwise run the parent's handler in the child (arming its Lua
    // interrupt hook), so the child would raise "interrupted!" instead of dying of SIGINT.
    sigset_t all, saved;
    sigfillset(&all);
    (void)sigprocmask(SIG_SETMASK, &all, &saved);
    pid_t pid = fork();
    if (pid != 0) {                    // parent (or -1 with errno)
        int err = errno;
        (void)sigprocmask(SIG_SETMASK, &saved, NULL);
        errno = err;
        return pid;
    }
    // Child: nothing but async-signal-safe steps until the caller's body runs. Signals that
    // came meanwhile stay pending until reset_signals_in_child unblocks them, and then get
    // their default action (a SIGINT the child ignores is discarded).
    reset_signals_in_child(ignore_sigint);
    luamp_interrupt_forget_in_child();   // flag, target, and a hook the parent's Ctrl-C armed
    luamp_service_forget_in_child();     // the pool service's state and hook (timers are not inherited)
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1); // the parent died before PDEATHSIG was armed
    for (int i = 0; i < held_count; i++) close(held_fds[i]);
    held_count = 0;
    return 0;
}

int luamp_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int luamp_reap(pid_t pid, int block, int *exitcode) {
    int status = 0;
    pid_t r;
    do {
        r = waitpid(pid, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -1;
    if (r == 0) return 0;
    if (WIFEXITED(status)) *exitcode = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) *exitcode = -WTERMSIG(status);
    else *exitcode = -1000;            // stopped/continued: not requested, never reported
    return 1;
}

void luamp_child_exit(int code) {
    fflush(NULL);
    _exit(code);
}

ssize_t luamp_read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n;
    do { n = read(fd, buf, cap - 1); } while (n < 0 && errno == EINTR);
    close(fd);
    if (n >= 0) buf[n] = 0;
    return n;
}

int luamp_thread_count(void) {
    // procfs gives /proc/self/task a link count of 2 + the number of threads: one stat(2), far
    // cheaper than having the kernel format all of /proc/self/stat on every start.
    struct stat st;
    if (stat("/proc/self/task", &st) == 0 && st.st_nlink > 2) return (int)(st.st_nlink - 2);
    // Otherwise field 20 of /proc/self/stat (num_threads): one small read, no allocation (opendir
    // would malloc 32 KiB, and every page the parent touches costs a copy-on-write fault later).
    char buf[1024];
    if (luamp_read_small_file("/proc/self/stat", buf, sizeof buf) <= 0) return -1;
    char *p = strrchr(buf, ')');       // the command name may contain spaces and parentheses
    if (!p) return -1;
    int field = 2;
    for (p++; *p && field < 20; p++) {
        if (*p == ' ') field++;
    }
    return field == 20 ? atoi(p) : -1;
}

void luamp_ignore_sigpipe(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
}

void luamp_set_interrupt_pending(void) { luamp_interrupted = 1; }

int luamp_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

/// Under lua_pcall on L: [co err] -> the error's text with co's traceback (luamp_msghandler's
/// rules). Runs __tostring, which may raise: hence protected, and on L, never on co.
static int thread_error_text(lua_State *L) {
    lua_State *co = lua_tothread(L, 1);
    if (luamp_error_text(L, 2)) return 1;
    luaL_traceback(L, co, lua_tostring(L, -1), 0);
    return 1;
}

/// Under lua_pcall on L: [f args...] -> nothing when f returned, else [text status]. Raises only
/// for its own failures (no memory, too many arguments).
static int call_in_thread_body(lua_State *L) {
    int nargs = lua_gettop(L) - 1;
    lua_State *co = lua_newthread(L);              // [f args... co]
    lua_insert(L, 1);                              // [co f args...]
    if (!lua_checkstack(co, nargs + 1))
        return luaL_error(L, "too many arguments for the target (%d)", nargs);
    lua_xmove(L, co, nargs + 1);                   // [co]
    int nres = 0;
    int status = lua_resume(co, L, nargs, &nres);
    if (status == LUA_OK) return 0;
    // Nothing more runs on co: it has no handler, so a raise there would unwind past us.
    if (status == LUA_YIELD) {
        lua_pushliteral(L, "attempt to yield from outside a coroutine");
        status = LUA_ERRRUN;
    } else {
        lua_xmove(co, L, 1);                       // [co err]
    }
    lua_pushcfunction(L, thread_error_text);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {         // [co err failure]
        const char *msg = lua_pushfstring(L, "(error object is a %s value; its __tostring failed)",
                                          luaL_typename(L, 2));
        luaL_traceback(L, co, msg, 0);
    }
    lua_pushinteger(L, status);
    return 2;
}

int luamp_call_in_thread(lua_State *L, int nargs) {
    lua_pushcfunction(L, call_in_thread_body);
    lua_insert(L, -(nargs + 2));                   // [body f args...]
    int was = luamp_lua_enter();
    int status = lua_pcall(L, nargs + 1, 2, 0);
    luamp_zone_restore(was);
    luamp_after_protected_call(L, status);
    if (status != LUA_OK) {                        // [err]: the body itself failed
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            lua_pushliteral(L, "cannot run the target");
        }
        return status;
    }
    if (lua_isnil(L, -1)) {                        // [nil nil]: the target returned
        lua_pop(L, 2);
        return LUA_OK;
    }
    status = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);                                 // [text]
    luamp_after_protected_call(L, status);         // the target ran out of memory
    return status;
}
