// The REPL prompt's signal handler: SIGINT, SIGWINCH and SIGTSTP only set flags the line editor polls.
#include "luamp_prompt.h"
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t prompt_flags[3];

static void on_prompt_signal(int sig) {
    switch (sig) {
    case SIGWINCH: prompt_flags[LUAMP_PROMPT_SIGWINCH] = 1; break;
    case SIGTSTP: prompt_flags[LUAMP_PROMPT_SIGTSTP] = 1; break;
    default: prompt_flags[LUAMP_PROMPT_SIGINT] = 1; break;
    }
}

void luamp_prompt_route_signals(int with_tstp) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_prompt_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;                       // no SA_RESTART: poll/read return EINTR
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGWINCH, &sa, NULL);
    if (with_tstp) (void)sigaction(SIGTSTP, &sa, NULL);
}

int luamp_prompt_take(enum luamp_prompt_flag flag) {
    // One exchange: a signal between a load and a separate clear would be lost.
    return __atomic_exchange_n(&prompt_flags[flag], 0, __ATOMIC_SEQ_CST);
}

