// A thread-local slot for SendLog's per-thread state (what the current encode did besides bytes).
#ifndef LUAMP_SENDLOG_H
#define LUAMP_SENDLOG_H

/// The calling thread's slot (NULL until set). C: `__thread` storage Swift cannot declare.
void *luamp_sendlog_slot(void);
/// Sets the calling thread's slot.
void luamp_sendlog_set_slot(void *p);

#endif
