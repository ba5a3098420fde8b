// GNU readline and history, for the REPL.
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>

// Swift 6 refuses to touch mutable C globals, so the few readline settings the REPL changes
// are set through these one-line wrappers.

/// Readline must not install its own SIGINT/SIGWINCH handlers: the REPL owns the signals.
static inline void luamp_rl_disable_signal_handlers(void) { rl_catch_signals = 0; rl_catch_sigwinch = 0; }
/// The application name readline uses for `$if luamp` in ~/.inputrc.
static inline void luamp_rl_set_name(const char *name) { rl_readline_name = name; }
/// Moves the cursor to the end of the line (before abandoning it on Ctrl-C).
static inline void luamp_rl_point_to_end(void) { rl_point = rl_end; }
