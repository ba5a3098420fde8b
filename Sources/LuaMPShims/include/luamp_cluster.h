// luamp worker (docs/cluster.md): SIGTERM as a flag (a signal handler may only write sig_atomic_t).
#ifndef LUAMP_CLUSTER_H
#define LUAMP_CLUSTER_H

/// Installs a SIGTERM handler that only sets a flag (SA_RESTART off: blocking calls return EINTR).
void luamp_cluster_sigterm_install(void);
/// 1 once SIGTERM arrived (the flag stays set).
int luamp_cluster_sigterm_received(void);

#endif
