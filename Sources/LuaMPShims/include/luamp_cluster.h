// The cluster (docs/cluster.md): SIGTERM as a flag (a signal handler may only write sig_atomic_t),
// and SHA-256 from the system's libcrypto (OpenSSL: SHA-NI/AVX2 code, ~15x a portable one).
#ifndef LUAMP_CLUSTER_H
#define LUAMP_CLUSTER_H

/// Installs a SIGTERM handler that only sets a flag (SA_RESTART off: blocking calls return EINTR).
void luamp_cluster_sigterm_install(void);
/// 1 once SIGTERM arrived (the flag stays set).
int luamp_cluster_sigterm_received(void);

#include <stddef.h>

/// A SHA-256 context (malloc'd; NULL when out of memory). No threads, no global state.
void *luamp_sha256_new(void);
void luamp_sha256_update(void *ctx, const void *data, size_t n);
/// Writes the 32-byte digest to `out` and frees the context.
void luamp_sha256_finish(void *ctx, unsigned char *out);

#endif
