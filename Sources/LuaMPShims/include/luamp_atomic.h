// Compare-and-swap on 1- and 2-byte cells in shared memory (luamp_sync.h has the 4- and 8-byte
// ones): Value/Array `add`, `exchange` and `compare_exchange` on every integer typecode.
// C because Swift's Atomic cannot wrap foreign memory.
#ifndef LUAMP_ATOMIC_H
#define LUAMP_ATOMIC_H

#include <stdint.h>

static inline int luamp_atomic_cas8(uint8_t *p, uint8_t expected, uint8_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
static inline int luamp_atomic_cas16(uint16_t *p, uint16_t expected, uint16_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
/// Atomic `*p += v` on a 64-bit cell (wrapping), returning the new value: `lock xadd`, no CAS loop.
static inline uint64_t luamp_atomic_fetch_add64(uint64_t *p, uint64_t v) {
    return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

#endif
