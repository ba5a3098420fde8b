// luamp_random.h: Randomness: getrandom(2), which Swift's Glibc module does not import.
#ifndef LUAMP_RANDOM_H
#define LUAMP_RANDOM_H

#include <stddef.h>
#include <sys/random.h>

/// getrandom(2): <sys/random.h> is not part of Swift's Glibc module. Returns bytes written or -1.
static inline long luamp_getrandom(void *buf, size_t len) { return (long)getrandom(buf, len, 0); }

#endif
