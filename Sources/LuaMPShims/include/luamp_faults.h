// Test-only fault injection: a child process SIGKILLs itself the n-th time it reaches a numbered point.
#ifndef LUAMP_FAULTS_H
#define LUAMP_FAULTS_H

#include <stdint.h>

/// The armed points, one bit per point number (0…31). 0 when no fault variable is set: then
/// `luamp_fault_reach` is one predictable branch. Only `luamp_fault_arm` writes it.
extern uint32_t luamp_fault_armed;

/// Arms `point`: the `n`-th time (n > 0) a process other than the calling one (the host)
/// reaches it, that process SIGKILLs itself. Thread-safe.
void luamp_fault_arm(int point, int n);

/// Counts one hit of an armed point in this process; SIGKILLs it at zero (never the host).
void luamp_fault_hit(int point);

/// Called at fault point `point`. C: keeps the armed check inline (a relaxed load is a plain load).
static inline void luamp_fault_reach(int point) {
    if (__builtin_expect((__atomic_load_n(&luamp_fault_armed, __ATOMIC_RELAXED) >> point) & 1u, 0))
        luamp_fault_hit(point);
}

#endif
