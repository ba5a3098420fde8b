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
static inline void luamp_newtable(lua_State *L) { lua_newtable(L); }                    // macro
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
static inline const char *luamp_typename_at(lua_State *L, int i) { return luaL_typename(L, i); } // macro
/// The Lua release string, e.g. "Lua 5.4.4" (a macro).
static inline const char *luamp_lua_release(void) { return LUA_RELEASE; }
static inline int luamp_lua_version_num(void) { return LUA_VERSION_NUM; }

// ---- Calling Swift from Lua without ever unwinding a Swift frame ----

/// Result codes a Swift dispatch function returns instead of raising.
enum {
    LUAMP_RAISE = -1,     // the error value is on top of the stack: the trampoline raises it
    LUAMP_ARGERROR = -2,  // the extra message is on top, *argn holds the argument: luaL_argerror
};

/// Swift's side of every Swift-implemented Lua function: returns results pushed (>= 0) or a LUAMP_* code.
typedef int (*luamp_dispatch_fn)(lua_State *L, void *box, int *argn);
/// Called by the __gc of a boxed Swift closure, to release it.
typedef void (*luamp_release_fn)(void *box);

/// Installs the two Swift entry points (once, at start-up).
void luamp_install_dispatch(luamp_dispatch_fn dispatch, luamp_release_fn release);

/// Pushes a Lua C closure calling `box` through the trampoline, with `nup` extra upvalues
/// taken from the stack top (reachable as upvalue 2...). Must be C: lua_error may only run here.
void luamp_push_swift_function(lua_State *L, void *box, int nup);

/// The message handler every protected call uses: error + luaL_traceback, lua.c's msghandler.
int luamp_msghandler(lua_State *L);

/// lua_pcall with luamp_msghandler below the function (a macro plus stack juggling).
int luamp_pcall_traceback(lua_State *L, int nargs, int nresults);

/// lua_pcall without a handler (the macro).
static inline int luamp_pcall(lua_State *L, int nargs, int nresults, int msgh) { return lua_pcall(L, nargs, nresults, msgh); }

/// Runs `luaL_tolstring` (may call __tostring/__name, i.e. raise) under lua_pcall.
/// Pushes the string on success; returns a Lua status.
int luamp_ptolstring(lua_State *L, int idx);

/// Calls lua_warning (cannot raise through Swift: warnings never raise).
static inline void luamp_warning(lua_State *L, const char *msg, int tocont) { lua_warning(L, msg, tocont); }

// ---- Interrupts: Ctrl-C sets a hook, as lua.c does; a signal handler never touches the state ----

/// Non-zero after SIGINT arrived while an interruptible run was active; blocking waits poll it.
extern volatile sig_atomic_t luamp_interrupted;
/// Returns and clears the interrupt flag (Swift 6 cannot touch a C global directly).
static inline int luamp_take_interrupt(void) { int v = luamp_interrupted; luamp_interrupted = 0; return v; }
/// Reads the interrupt flag without clearing it.
static inline int luamp_interrupt_pending(void) { return luamp_interrupted; }
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

/// Checks once that the running liblua has exactly the layout above, using probe tables; enables
/// luamp_fasttable and returns 1 if so. Must be C: it mirrors C structs Swift cannot see.
int luamp_fasttable_check(lua_State *L);
/// Fills *out for the table at address `table` (lua_topointer); returns 0 when the fast path is
/// off. The pointers stay valid until the table is next modified (no insertion happens while the
/// encoder reads it).
int luamp_fasttable(const void *table, luamp_tableparts *out);

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
static inline void luamp_flush_all(void) { fflush(NULL); }

#endif
