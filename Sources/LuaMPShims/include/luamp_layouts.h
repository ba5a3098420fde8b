// The arena layouts both Swift and C read: every kind's magic, SharedRef, SharedLock, SharedCells.
#ifndef LUAMP_LAYOUTS_H
#define LUAMP_LAYOUTS_H

#include <pthread.h>
#include <stdint.h>

// ---- kind magics: the first UInt32 of every arena object, also in its userdata (SharedRef) ----
// One list, so two kinds can never share a tag and C never copies one. ASCII, little-endian.
#define LUAMP_MAGIC_LOCK        0x4c4b4c4du   // "MLKL"
#define LUAMP_MAGIC_RLOCK       0x4c4b524du   // "MRKL"
#define LUAMP_MAGIC_SEMAPHORE   0x4d45534du   // "MSEM"
#define LUAMP_MAGIC_BOUNDED_SEM 0x4d455342u   // "BSEM"
#define LUAMP_MAGIC_EVENT       0x5456454du   // "MEVT"
#define LUAMP_MAGIC_CONDITION   0x444e434du   // "MCND"
#define LUAMP_MAGIC_BARRIER     0x5242424du   // "MBBR"
#define LUAMP_MAGIC_VALUE       0x4c41564du   // "MVAL"
#define LUAMP_MAGIC_ARRAY       0x5252414du   // "MARR"
#define LUAMP_MAGIC_DICT        0x5443444du   // "MDCT"
#define LUAMP_MAGIC_LIST        0x54534c4du   // "MLST"
#define LUAMP_MAGIC_QUEUE       0x55455551u   // "QQEU"
#define LUAMP_MAGIC_JOINABLE    0x5545514au   // "JQEU"
#define LUAMP_MAGIC_SIMPLEQUEUE 0x55455153u   // "SQEU"

// ---- SharedRef: the Lua userdata of an arena object (Swift's struct; checked at start-up) ----
#define LUAMP_SHARED_REF_SIZE 32
#define LUAMP_SHARED_REF_MAGIC_OFFSET 0    // UInt32 kind magic
#define LUAMP_SHARED_REF_OFFSET_OFFSET 8   // UInt64 arena offset

// ---- SharedLock (Lock, RLock) ----
#define LUAMP_LOCK_OWNER_OFFSET 8    // UInt32 owner pid, 0 = free (relaxed atomics)
#define LUAMP_LOCK_DEPTH_OFFSET 12   // UInt32 re-entry depth (relaxed atomics)
#define LUAMP_LOCK_MUTEX_OFFSET 16   // robust error-checking pthread_mutex_t

// ---- SharedCells (Value, Array) ----
#define LUAMP_CELLS_TYPE_OFFSET 4    // UInt8 typecode letter
#define LUAMP_CELLS_LOCK_OFFSET 8    // UInt64 lock offset, 0 = none
#define LUAMP_CELLS_COUNT_OFFSET 16  // UInt64 element count
#define LUAMP_CELLS_DATA_OFFSET 24   // the cells, 8-byte aligned

_Static_assert(LUAMP_SHARED_REF_OFFSET_OFFSET % 8 == 0, "SharedRef.offset is 8-byte aligned");
_Static_assert(LUAMP_LOCK_DEPTH_OFFSET == LUAMP_LOCK_OWNER_OFFSET + 4, "owner and depth are adjacent words");
_Static_assert(LUAMP_LOCK_MUTEX_OFFSET % _Alignof(pthread_mutex_t) == 0, "the lock's mutex is aligned");
_Static_assert(LUAMP_CELLS_DATA_OFFSET % 8 == 0 && LUAMP_CELLS_COUNT_OFFSET + 8 <= LUAMP_CELLS_DATA_OFFSET,
               "cells follow the count, 8-byte aligned");

#endif
