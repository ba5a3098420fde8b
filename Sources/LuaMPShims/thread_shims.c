// Thread-local slots (C `__thread` storage Swift cannot declare): see luamp_thread.h.
#include "luamp_thread.h"

static __thread void *slots[LUAMP_SLOT_COUNT];

void *luamp_thread_slot(int i) { return slots[i]; }
void luamp_thread_set_slot(int i, void *p) { slots[i] = p; }
