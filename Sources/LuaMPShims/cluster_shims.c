// C because a signal handler may only touch sig_atomic_t words, and libcrypto's SHA-256 is a C API
// whose context layout Swift should not know (luamp_cluster.h).
#define OPENSSL_API_COMPAT 0x10100000L   /* SHA256_Init & co. without deprecation warnings */
#include <openssl/sha.h>
#include <signal.h>
#include <stdlib.h>
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

void *luamp_sha256_new(void) {
    SHA256_CTX *c = malloc(sizeof *c);
    if (c) SHA256_Init(c);
    return c;
}

void luamp_sha256_update(void *ctx, const void *data, size_t n) { SHA256_Update(ctx, data, n); }

void luamp_sha256_finish(void *ctx, unsigned char *out) {
    SHA256_Final(out, ctx);
    free(ctx);
}
