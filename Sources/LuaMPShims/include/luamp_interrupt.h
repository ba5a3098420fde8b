// luamp_interrupt.h: Interrupts: Ctrl-C sets a hook, as lua.c does; a signal handler never touches the state.
#ifndef LUAMP_INTERRUPT_H
#define LUAMP_INTERRUPT_H

#include <signal.h>
#include "luamp_lua.h"

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

/// Sets the interrupt flag again (after a wait consumed it), so the caller still sees the Ctrl-C.
void luamp_set_interrupt_pending(void);

#endif
