// C because a signal handler may only touch sig_atomic_t words (luamp_cluster.h).
#include <signal.h>
#include <string.h>
#include "luamp_cluster.h"

static volatile sig_atomic_t sigterm_flag = 0;

static void on_sigterm(int sig) { (void)sig; sigterm_flag = 1; }

void luamp_cluster_sigterm_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
}

int luamp_cluster_sigterm_received(void) { return sigterm_flag != 0; }
