// luamp_process.h: Processes: fork, reap, pidfd, the cached pid and held descriptors (process_shims.c).
#ifndef LUAMP_PROCESS_H
#define LUAMP_PROCESS_H

#include <stdint.h>
#include <sys/types.h>
#include "luamp_lua.h"

/// getpid(), cached: set by luamp_track_pid_across_fork and refreshed in every fork child.
extern uint32_t luamp_self_pid_value;
/// Incremented in the parent before every fork (once luamp_track_pid_across_fork ran).
extern uint64_t luamp_fork_generation_value;
/// Reads the cached pid (Swift 6 cannot touch a C global directly).
static inline uint32_t luamp_self_pid(void) { return luamp_self_pid_value; }
/// Reads the fork generation.
static inline uint64_t luamp_fork_generation(void) { return luamp_fork_generation_value; }
/// Caches getpid() and registers pthread_atfork handlers that bump the fork generation (prepare)
/// and refresh the pid (child). Call once per process, before the first fork. Returns
/// pthread_atfork's result (0 on success).
int luamp_track_pid_across_fork(void);

/// fflush(NULL), then fork with every signal blocked (restored in the parent; in the child a
/// signal that came meanwhile gets its default action, never the parent's handler). In the
/// child, before returning 0: signals 1–31 back to their default
/// action (SIGPIPE stays ignored; SIGINT is ignored when `ignore_sigint` is non-zero, set before
/// the unblock so a Ctrl-C pending since the fork is discarded), no signal blocked, the interrupt flag, target and armed
/// Ctrl-C hook cleared (luamp_interrupt_forget_in_child),
/// PR_SET_PDEATHSIG(SIGKILL) armed, _exit(1) if the parent already died (getppid() race), and
/// the descriptors registered with luamp_hold_fd closed (they belong to the child's siblings).
/// Returns the child's pid in the parent, 0 in the child, -1 with errno on failure.
/// C: the child must run only async-signal-safe code before its body, and prctl is variadic.
pid_t luamp_fork(int ignore_sigint);

/// Makes room for `n` more held descriptors (the list grows without bound; the first 4096 need
/// no heap). Returns -1 with errno ENOMEM when it cannot: callers reserve before they fork or
/// open what they will hold, so a later luamp_hold_fd cannot fail.
int luamp_hold_reserve(int n);
/// Registers a descriptor this process holds for a child (closed in every later child).
/// Returns -1 (ENOMEM) only when the list could not grow; after luamp_hold_reserve it cannot.
/// C: luamp_fork's child path reads the list before any Swift code runs.
int luamp_hold_fd(int fd);
/// Unregisters a descriptor (call before closing it).
void luamp_release_fd(int fd);

/// pidfd_open(2): a file descriptor that polls readable when `pid` ends; -1 with errno
/// (ENOSYS on kernels before 5.3). C: glibc has no wrapper before 2.36 (raw syscall).
int luamp_pidfd_open(pid_t pid);

/// waitpid(pid), retrying EINTR. Returns 1 and sets `*exitcode` (the exit status, or -N after
/// signal N) when the child was reaped, 0 if it still runs (`block` == 0), -1 with errno.
/// C: the W* status macros.
int luamp_reap(pid_t pid, int block, int *exitcode);

/// How every child ends: fflush(NULL) then _exit(code) (no atexit handlers, no parent cleanup).
/// C: marks noreturn for the compiler and keeps flush + _exit together.
__attribute__((noreturn)) void luamp_child_exit(int code);

/// Reads at most `cap - 1` bytes of the file at `path` (a /proc file: one read) into `buf` and
/// NUL-terminates them. Returns the byte count, or -1 with errno. C: nothing allocated.
ssize_t luamp_read_small_file(const char *path, char *buf, size_t cap);

/// Threads in this process, or -1 if it cannot be told: the link count of /proc/self/task (2 +
/// threads, one stat), else field 20 of /proc/self/stat. C: a raw read into a stack buffer, nothing allocated.
int luamp_thread_count(void);

/// signal(SIGPIPE, SIG_IGN) with sigaction: writes to closed pipes fail with EPIPE instead of
/// killing the process. C: struct sigaction's handler union.
void luamp_ignore_sigpipe(void);

/// Calls the function below `nargs` arguments in a new coroutine (so a child's traceback shows
/// only the target's frames, not the parent's `start` call it was forked from), discarding
/// results. On error pushes "message\nstack traceback:\n…" (as luamp_msghandler would) and
/// returns the Lua status; a yield out of the target is an error, and so are more arguments
/// than the coroutine's stack takes. Everything runs under lua_pcall on L, so nothing (a
/// failing `__tostring`, no memory) ever raises through the caller; a `__tostring` that fails
/// gives "(error object is a T value; its __tostring failed)". Stack: [-(nargs+1), +(0|1)].
/// C: lua_resume's protocol and lua_pcall of C helpers (no Swift frame may be under a raise).
int luamp_call_in_thread(lua_State *L, int nargs);

/// pipe2(fds, O_CLOEXEC). C: pipe2 is a GNU extension (_GNU_SOURCE is set only for this target).
int luamp_pipe_cloexec(int fds[2]);

#endif
