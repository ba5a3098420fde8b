// SendLog shims: one thread-local pointer (C `__thread`), so concurrent runtimes never share a send's log.
#include "luamp_sendlog.h"

static __thread void *slot;

void *luamp_sendlog_slot(void) { return slot; }
void luamp_sendlog_set_slot(void *p) { slot = p; }
