// Fault injection for crash tests (LUAMP_QUEUE_FAULT, LUAMP_JOURNAL_FAULT): one mechanism for both.
#include "luamp_faults.h"

#include <signal.h>
#include <unistd.h>

uint32_t luamp_fault_armed;
static int countdown[32];
static pid_t host;

void luamp_fault_arm(int point, int n) {
    if (point < 0 || point >= 32 || n <= 0) return;
    __atomic_store_n(&countdown[point], n, __ATOMIC_RELAXED);
    __atomic_store_n(&host, getpid(), __ATOMIC_RELAXED);
    __atomic_fetch_or(&luamp_fault_armed, 1u << point, __ATOMIC_RELEASE);
}

void luamp_fault_hit(int point) {
    if (getpid() == __atomic_load_n(&host, __ATOMIC_RELAXED)) return;
    if (__atomic_sub_fetch(&countdown[point], 1, __ATOMIC_RELAXED) == 0) kill(getpid(), SIGKILL);
}
