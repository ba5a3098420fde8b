// Per-thread slots: one pointer per job (the send log, the queue's copy-out buffer) in C `__thread` storage.
#ifndef LUAMP_THREAD_H
#define LUAMP_THREAD_H

/// The jobs that keep per-thread state (runtimes on several threads never share it); the last
/// `RuntimeState` lookup of the thread.
enum { LUAMP_SLOT_SENDLOG = 0, LUAMP_SLOT_QUEUE_SCRATCH = 1, LUAMP_SLOT_RUNTIME_LOOKUP = 2, LUAMP_SLOT_COUNT = 4 };

/// The calling thread's slot `i` (NULL until set).
void *luamp_thread_slot(int i);
/// Sets the calling thread's slot `i`.
void luamp_thread_set_slot(int i, void *p);

#endif
