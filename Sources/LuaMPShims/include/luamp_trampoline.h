// luamp_trampoline.h: Calling Swift from Lua without ever unwinding a Swift frame, and the protected calls Swift uses instead of raising Lua API functions.
#ifndef LUAMP_TRAMPOLINE_H
#define LUAMP_TRAMPOLINE_H

#include "luamp_lua.h"

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

/// Runs `luaL_tolstring` (may call __tostring/__name, i.e. raise) under lua_pcall.
/// Pushes the string on success; returns a Lua status.
int luamp_ptolstring(lua_State *L, int idx);

/// lua_concat of the top `n` strings under lua_pcall (lua_concat may raise): pushes the result
/// (or the error message) in their place; returns a Lua status. mp.dumps uses it to build a message
/// holding big strings with a single copy of each.
int luamp_pconcat(lua_State *L, int n);

#endif
