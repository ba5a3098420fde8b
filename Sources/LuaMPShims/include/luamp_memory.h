// luamp_memory.h: Out of memory (memory_shims.c): allocation failures become Lua's memory error.
#ifndef LUAMP_MEMORY_H
#define LUAMP_MEMORY_H

#include "luamp_lua.h"

/// Installs luamp's allocator on `L` (realloc/free plus the emergency reserve) and takes the
/// reserve: 4 MiB (malloc, untouched) given back when memory runs out under Swift frames.
void luamp_use_allocator(lua_State *L);
/// Allocates the reserve if it is not held; returns 0 when even that fails (memory is exhausted).
int luamp_memory_reserve_arm(void);
/// Frees the reserve (room for Swift to finish and report an out-of-memory error).
void luamp_memory_reserve_release(void);
/// This thread's reserve block, NULL while it is released (read through the two functions below).
extern __thread void *luamp_reserve_block;
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

#endif
