// GNU readline and history, for the REPL.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
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
/// Keeps multi-line entries whole across restarts: each entry is written after a `#<time>`
/// line, and readline then reads every line up to the next such line back as one entry (a file
/// without them is still read one entry per line).
static inline void luamp_rl_keep_multiline_history(void) { history_write_timestamps = 1; history_comment_char = '#'; }
/// Stamps the entries read from an older file that has no `#<time>` lines, so the file is written
/// in the multi-line form from now on (readline only joins lines when the file starts stamped).
static inline void luamp_rl_stamp_untimed_entries(void) {
    char stamp[32];
    snprintf(stamp, sizeof stamp, "#%ld", (long)time(NULL));
    for (int i = 0; i < history_length; i++) {
        HIST_ENTRY *e = history_get(history_base + i);
        if (e == NULL || (e->timestamp != NULL && e->timestamp[0] != 0)) continue;
        char *copy = malloc(sizeof stamp);
        if (copy == NULL) return;
        snprintf(copy, sizeof stamp, "%s", stamp);
        free(e->timestamp);
        e->timestamp = copy;
    }
}
