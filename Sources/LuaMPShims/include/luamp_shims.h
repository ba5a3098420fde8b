// The C side of luamp: what Swift cannot express (Lua macros, lua_error, variadic and GNU-only libc).
// Every helper is prefixed `luamp_` and says in one line why it must be C.
#ifndef LUAMP_SHIMS_H
#define LUAMP_SHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

// ---- Lua macros (values come from luaconf.h, so they are wrapped, not re-implemented) ----

static inline int luamp_registryindex(void) { return LUA_REGISTRYINDEX; }               // macro
static inline int luamp_upvalueindex(int i) { return lua_upvalueindex(i); }             // macro
static inline void luamp_pop(lua_State *L, int n) { lua_pop(L, n); }                    // macro
static inline void luamp_insert(lua_State *L, int idx) { lua_insert(L, idx); }          // macro
static inline void luamp_remove(lua_State *L, int idx) { lua_remove(L, idx); }          // macro
static inline void luamp_replace(lua_State *L, int idx) { lua_replace(L, idx); }        // macro
static inline const char *luamp_tolstring(lua_State *L, int i, size_t *len) { return lua_tolstring(L, i, len); }
static inline lua_Integer luamp_tointegerx(lua_State *L, int i, int *isnum) { return lua_tointegerx(L, i, isnum); }
static inline lua_Number luamp_tonumberx(lua_State *L, int i, int *isnum) { return lua_tonumberx(L, i, isnum); }
static inline void luamp_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }      // macro
static inline void *luamp_newuserdata(lua_State *L, size_t size) { return lua_newuserdatauv(L, size, 1); }
static inline int luamp_loadbuffer(lua_State *L, const char *buf, size_t len, const char *name, const char *mode) {
    return luaL_loadbufferx(L, buf, len, name, mode);
}
/// The Lua release string, e.g. "Lua 5.4.4" (a macro).
static inline const char *luamp_lua_release(void) { return LUA_RELEASE; }
/// "Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio": what `lua -v` prints (a macro).
static inline const char *luamp_lua_copyright(void) { return LUA_COPYRIGHT; }
/// The most slots a Lua stack may hold (LUAI_MAXSTACK from luaconf.h, a macro).
static inline int luamp_lua_maxstack(void) { return LUAI_MAXSTACK; }

// ---- Calling Swift from Lua without ever unwinding a Swift frame ----

/// Result codes a Swift dispatch function returns instead of raising.
enum {
    LUAMP_RAISE = -1,     // the error value is on top of the stack: the trampoline raises it
    LUAMP_ARGERROR = -2,  // the extra message is on top, *argn holds the argument: luaL_argerror
    LUAMP_MEMERR = -3,    // nothing pushed: raise Lua's own memory error ("not enough memory")
};

/// Swift's side of every Swift-implemented Lua function: returns results pushed (>= 0) or a LUAMP_* code.
typedef int (*luamp_dispatch_fn)(lua_State *L, void *box, int *argn);
/// Called by the __gc of a boxed Swift closure, to release it.
typedef void (*luamp_release_fn)(void *box);

/// Turns a Swift function's result code into Lua results (n >= 0) or a raise (LUAMP_RAISE,
/// LUAMP_ARGERROR with `argn`). Every C function that calls Swift ends with it, after the Swift
/// frame has returned: the one place luamp raises on Swift's behalf.
int luamp_complete_swift_call(lua_State *L, int n, int argn);

/// Installs the two Swift entry points (once, at start-up).
void luamp_install_dispatch(luamp_dispatch_fn dispatch, luamp_release_fn release);

/// Pushes a Lua C closure calling `box` through the trampoline, with `nup` extra upvalues
/// taken from the stack top (reachable as upvalue 2...). Must be C: lua_error may only run here.
void luamp_push_swift_function(lua_State *L, void *box, int nup);
/// The pointer-sized slot Lua keeps with every thread of a state (`lua_getextraspace`; a new
/// coroutine copies its creator's). LuaState stores there the state's Swift-function box
/// counter, so boxes are counted per state. C: lua_getextraspace is a macro.
static inline void **luamp_extraspace(lua_State *L) {
    _Static_assert(LUA_EXTRASPACE >= sizeof(void *), "LUA_EXTRASPACE holds a pointer");
    return (void **)lua_getextraspace(L);
}

/// Pushes the text of the error object at `idx`: itself if a string or number, else its
/// `__tostring` result if that is a string, else "(error object is a T value)". Returns 1 when
/// the text is final (from `__tostring`: no traceback is added, as lua.c), 0 when a traceback
/// should follow. Stack: [-0, +1]. May raise (runs `__tostring`): call it only under lua_pcall.
/// C: the one place that turns an error object into text (luamp_msghandler, luamp_call_in_thread).
int luamp_error_text(lua_State *L, int idx);

/// The message handler every protected call uses: error + luaL_traceback, lua.c's msghandler.
int luamp_msghandler(lua_State *L);

/// lua_pcall with luamp_msghandler below the function (a macro plus stack juggling).
int luamp_pcall_traceback(lua_State *L, int nargs, int nresults);

/// lua_pcall without a handler (the macro), marking Lua as running (memory_shims.c) and
/// collecting and releasing the memory reserve when it fails with LUA_ERRMEM.
int luamp_pcall(lua_State *L, int nargs, int nresults, int msgh);

// ---- Out of memory (memory_shims.c): allocation failures become Lua's memory error ----

/// Installs luamp's allocator on `L` (realloc/free plus the emergency reserve) and takes the
/// reserve: 4 MiB (malloc, untouched) given back when memory runs out under Swift frames.
void luamp_use_allocator(lua_State *L);
/// Allocates the reserve if it is not held; returns 0 when even that fails (memory is exhausted).
int luamp_memory_reserve_arm(void);
/// Frees the reserve (room for Swift to finish and report an out-of-memory error).
void luamp_memory_reserve_release(void);
/// The reserve block, NULL while it is released (read through the two functions below).
extern void *luamp_reserve_block;
static inline int luamp_memory_reserve_armed(void) { return luamp_reserve_block != NULL; }
/// True when memory ran out under Swift frames since the reserve was last taken: code that
/// allocates in a loop from Swift (the decoder) stops with a memory error instead of going on.
static inline int luamp_memory_low(void) { return luamp_reserve_block == NULL; }
/// lua_createtable / lua_pushlstring under lua_pcall, for sizes Swift takes from its input:
/// LUA_OK with the value pushed, or the failure status (LUA_ERRMEM: the reserve is released)
/// with nothing pushed. Needs 3 free stack slots.
int luamp_pcreatetable(lua_State *L, int narr, int nrec);
int luamp_ppushlstring(lua_State *L, const char *s, size_t len);
/// The C stack's innermost code is now Swift (returns the previous mark for luamp_zone_restore).
int luamp_swift_enter(void);
/// The C stack's innermost code is now Lua, under a protected call made from Swift.
int luamp_lua_enter(void);
void luamp_zone_restore(int was);
/// After a protected call returns `status`: on LUA_ERRMEM, a full collection and the reserve
/// released, so the Swift code that reports the error can allocate.
void luamp_after_protected_call(lua_State *L, int status);
/// Raises Lua's own memory error (status LUA_ERRMEM, message "not enough memory"). C only:
/// called by luamp_complete_swift_call for LUAMP_MEMERR, after the Swift frame returned.
int luamp_raise_memory_error(lua_State *L);

/// Runs `luaL_tolstring` (may call __tostring/__name, i.e. raise) under lua_pcall.
/// Pushes the string on success; returns a Lua status.
int luamp_ptolstring(lua_State *L, int idx);

/// Calls lua_warning (cannot raise through Swift: warnings never raise).
static inline void luamp_warning(lua_State *L, const char *msg, int tocont) { lua_warning(L, msg, tocont); }

// ---- Interrupts: Ctrl-C sets a hook, as lua.c does; a signal handler never touches the state ----

/// Non-zero after SIGINT arrived while an interruptible run was active; blocking waits poll it.
extern volatile sig_atomic_t luamp_interrupted;
/// Takes a pending Ctrl-C: returns non-zero if one arrived, clearing the flag and disarming the
/// hook the handler armed, so the `interrupted!` the caller now raises is the only one (a `pcall`
/// catches it and nothing fires again at the next instruction). SIGINT is blocked meanwhile, so
/// a second Ctrl-C is either taken here too or arms everything afresh. C: the hook is private.
int luamp_take_interrupt(void);
/// Reads the interrupt flag without clearing it.
static inline int luamp_interrupt_pending(void) { return luamp_interrupted; }
/// How many SIGINTs the interrupt handler has seen (never cleared: the CLI compares counts to
/// tell an uncaught "interrupted!" caused by Ctrl-C from one a script raised itself).
extern volatile sig_atomic_t luamp_sigint_count;
static inline long luamp_sigint_seen(void) { return (long)luamp_sigint_count; }
/// In a new child (luamp_fork): forgets the interrupt target, clears the flag, and removes the
/// Ctrl-C hook if the parent's handler had armed it just before the fork (a script's own
/// debug.sethook stays). C: the hook function and target are private to lua_shims.c.
void luamp_interrupt_forget_in_child(void);
/// Routes SIGINT to `L`: the next Lua instruction raises "interrupted!". NULL restores SIG_DFL.
void luamp_interrupt_target(lua_State *L);

/// lua_concat of the top `n` strings under lua_pcall (lua_concat may raise): pushes the result
/// (or the error message) in their place; returns a Lua status. mp.dumps uses it to build a message
/// holding big strings with a single copy of each.
int luamp_pconcat(lua_State *L, int n);

// ---- reading tables directly (the codec's hot loop; see table_shims.c) ----

/// Lua 5.4 layout facts the encoder reads (lobject.h): TValue slots of the array part are 16 bytes
/// (8-byte value, type tag at 8); hash nodes are 24 bytes (value, value tag at 8, key tag at 9,
/// key value at 16); a string's bytes start at 24, a short string's length is the byte at 11, a
/// long string's the size_t at 16. Type tags: see LUAMP_TAG_*.
enum {
    LUAMP_SLOT_SIZE = 16, LUAMP_NODE_SIZE = 24, LUAMP_NODE_KEYTAG = 9, LUAMP_NODE_KEY = 16,
    LUAMP_STR_CONTENTS = 24, LUAMP_STR_SHORTLEN = 11, LUAMP_STR_LONGLEN = 16,
    LUAMP_TAG_FALSE = 0x01, LUAMP_TAG_TRUE = 0x11, LUAMP_TAG_INT = 0x03, LUAMP_TAG_FLOAT = 0x13,
    LUAMP_TAG_SHORTSTR = 0x44, LUAMP_TAG_LONGSTR = 0x54,
};

/// The parts of a table: its array part (asize slots) and hash nodes (nsize nodes).
typedef struct { const void *array; unsigned int asize; const void *nodes; unsigned int nsize; } luamp_tableparts;

/// Lua 5.4's Table and TValue (lobject.h), mirrored: CommonHeader; flags; lsizenode; alimit;
/// array; node; lastfree; metatable. Used only once luamp_fasttable_check passed.
typedef struct {
    void *next; unsigned char tt, marked, flags, lsizenode; unsigned int alimit;
    const void *array; const void *node; const void *lastfree; const void *metatable;
} luamp_table54;
typedef struct { union { void *p; long long i; double n; } value; unsigned char tt; } luamp_tvalue54;

/// 1 once luamp_fasttable_check verified the layout above against the running liblua.
extern int luamp_fasttable_ok;

/// luaH_realasize: alimit is the array size unless BITRAS says it is only a hint.
static inline unsigned int luamp_table_asize(const luamp_table54 *t) {
    unsigned int a = t->alimit;
    if (!(t->flags & 0x80) || (a & (a - 1)) == 0) return a;
    a |= a >> 1; a |= a >> 2; a |= a >> 4; a |= a >> 8; a |= a >> 16;
    return a + 1;
}

/// Checks that the running liblua has exactly the layout above, using probe tables, once per
/// process (the first call decides; runtimes on several threads may race, harmlessly); enables
/// luamp_fasttable and returns 1 if so. Must be C: it mirrors C structs Swift cannot see.
int luamp_fasttable_check(lua_State *L);
/// Fills *out for the table at address `table` (lua_topointer); returns 0 when the fast path is
/// off. The pointers stay valid until the table is next modified (no insertion happens while the
/// encoder reads it). Inline: the encoder calls it once per table.
static inline int luamp_fasttable(const void *table, luamp_tableparts *out) {
    if (!luamp_fasttable_ok) return 0;
    const luamp_table54 *t = (const luamp_table54 *)table;
    out->array = t->array;
    out->asize = luamp_table_asize(t);
    out->nodes = t->node;
    out->nsize = 1u << t->lsizenode;
    return 1;
}
/// The metatable (lua_topointer of it) of the table at `table`, or NULL; only once
/// luamp_fasttable returned 1.
static inline const void *luamp_table_metatable(const void *table) {
    return ((const luamp_table54 *)table)->metatable;
}
/// A hash of the table's hash part (keys, values and the node array's address), never 0; 0 when
/// the fast path is off. The codec compares it to notice that package.loaded changed.
uint64_t luamp_table_fingerprint(const void *table);

// ---- Lua file handles (file_shims.c) ----
/// The descriptor of the io library file handle at `idx`, after flushing it, and in `*pos` its
/// logical position (`ftell`: -1 when not seekable); -1 for a closed handle, -2 when the value is
/// not a file handle. Never raises.
int luamp_file_descriptor(lua_State *L, int idx, long long *pos);
/// Pushes a new io library file handle reading/writing `fd` (fdopen with `mode`); 0 (nothing
/// pushed, `fd` still open) when fdopen fails. Stack: [-0, +1|0].
int luamp_push_file(lua_State *L, int fd, const char *mode);

/// Stops the garbage collector and returns whether it was running (lua_gc is variadic). The encoder
/// pauses it so no finalizer can run, and modify a table being read, in the middle of a message.
static inline int luamp_gc_pause(lua_State *L) {
    int running = lua_gc(L, LUA_GCISRUNNING);
    if (running) lua_gc(L, LUA_GCSTOP);
    return running;
}
/// Restarts the garbage collector (lua_gc is variadic).
static inline void luamp_gc_resume(lua_State *L) { lua_gc(L, LUA_GCRESTART); }

// ---- randomness ----
#include <sys/random.h>
/// getrandom(2): <sys/random.h> is not part of Swift's Glibc module. Returns bytes written or -1.
static inline long luamp_getrandom(void *buf, size_t len) { return (long)getrandom(buf, len, 0); }

// ---- stdio (Swift 6 cannot import stdout/stderr) ----
static inline FILE *luamp_stdout(void) { return stdout; }
static inline FILE *luamp_stderr(void) { return stderr; }
static inline FILE *luamp_stdin(void) { return stdin; }

// ---- Processes: fork, reap, pidfd (process_shims.c) ----

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
#include <sys/types.h>

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

/// Sets the interrupt flag again (after a wait consumed it), so the caller still sees the Ctrl-C.
void luamp_set_interrupt_pending(void);

// mp inside another interpreter (mp.so): Ctrl-C chaining and the end-of-state finalizer.
// Included here so that adding that header invalidates the clang module caches of old builds.
#include "luamp_host.h"

#endif
