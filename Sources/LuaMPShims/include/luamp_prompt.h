// The REPL prompt's signal flags: set by a C handler, read and cleared by the line editor.
#ifndef LUAMP_PROMPT_H
#define LUAMP_PROMPT_H

/// Which signal a prompt flag records.
enum luamp_prompt_flag { LUAMP_PROMPT_SIGINT = 0, LUAMP_PROMPT_SIGWINCH = 1, LUAMP_PROMPT_SIGTSTP = 2 };

/// Routes SIGINT, SIGWINCH and (when `with_tstp`) SIGTSTP to the prompt's flags, without
/// SA_RESTART so a waiting poll or read returns EINTR. C: the handler writes only
/// `volatile sig_atomic_t` words — a Swift global written from a handler goes through the
/// runtime's exclusivity checks and lazy initialisers, neither async-signal-safe (a Ctrl-C
/// storm at the prompt aborted with "Simultaneous accesses").
void luamp_prompt_route_signals(int with_tstp);
/// Returns and clears the flag.
int luamp_prompt_take(enum luamp_prompt_flag flag);

#endif
