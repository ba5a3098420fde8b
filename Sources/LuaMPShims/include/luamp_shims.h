// The C side of luamp: what Swift cannot express (Lua macros, lua_error, variadic and GNU-only libc).
// Every helper is prefixed `luamp_` and says in one line why it must be C. One header per job;
// this one includes them all, so C files and Swift see every helper through one name.
#ifndef LUAMP_SHIMS_H
#define LUAMP_SHIMS_H

#include "luamp_lua.h"          // Lua macros
#include "luamp_trampoline.h"   // Swift functions called from Lua; protected calls
#include "luamp_memory.h"       // out of memory
#include "luamp_interrupt.h"    // Ctrl-C
#include "luamp_table.h"        // Lua 5.4 table layout (the codec's fast path)
#include "luamp_gc.h"           // pausing the collector
#include "luamp_random.h"       // getrandom
#include "luamp_stdio.h"        // stdio, io library file handles
#include "luamp_process.h"      // fork, reap, pidfd, held descriptors

// mp inside another interpreter (mp.so): Ctrl-C chaining and the end-of-state finalizer.
// Included here so that adding that header invalidates the clang module caches of old builds.
#include "luamp_host.h"

#endif
