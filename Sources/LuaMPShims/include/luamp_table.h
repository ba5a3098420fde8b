// luamp_table.h: Reading Lua 5.4 tables directly (the codec's hot loop; the borrowed layout and its start-up check are in table_shims.c).
#ifndef LUAMP_TABLE_H
#define LUAMP_TABLE_H

#include <stdint.h>
#include "luamp_lua.h"

/// Lua 5.4 layout facts the encoder reads (lobject.h): TValue slots of the array part are 16 bytes
/// (8-byte value, type tag at 8); hash nodes are 24 bytes (value, value tag at 8, key tag at 9,
/// key value at 16); a string's bytes start at 24, a short string's length is the byte at 11, a
/// long string's the size_t at 16. Type tags: see LUAMP_TAG_*.
enum {
    LUAMP_SLOT_SIZE = 16, LUAMP_NODE_SIZE = 24, LUAMP_NODE_KEYTAG = 9, LUAMP_NODE_KEY = 16,
    LUAMP_STR_CONTENTS = 24, LUAMP_STR_SHORTLEN = 11, LUAMP_STR_LONGLEN = 16,
    LUAMP_TAG_FALSE = 0x01, LUAMP_TAG_TRUE = 0x11, LUAMP_TAG_INT = 0x03, LUAMP_TAG_FLOAT = 0x13,
    LUAMP_TAG_SHORTSTR = 0x44, LUAMP_TAG_LONGSTR = 0x54,
};

/// The parts of a table: its array part (asize slots) and hash nodes (nsize nodes).
typedef struct { const void *array; unsigned int asize; const void *nodes; unsigned int nsize; } luamp_tableparts;

/// Lua 5.4's Table and TValue (lobject.h), mirrored: CommonHeader; flags; lsizenode; alimit;
/// array; node; lastfree; metatable. Used only once luamp_fasttable_check passed.
typedef struct {
    void *next; unsigned char tt, marked, flags, lsizenode; unsigned int alimit;
    const void *array; const void *node; const void *lastfree; const void *metatable;
} luamp_table54;
typedef struct { union { void *p; long long i; double n; } value; unsigned char tt; } luamp_tvalue54;

/// 1 once luamp_fasttable_check verified the layout above against the running liblua.
extern int luamp_fasttable_ok;

/// luaH_realasize: alimit is the array size unless BITRAS says it is only a hint.
static inline unsigned int luamp_table_asize(const luamp_table54 *t) {
    unsigned int a = t->alimit;
    if (!(t->flags & 0x80) || (a & (a - 1)) == 0) return a;
    a |= a >> 1; a |= a >> 2; a |= a >> 4; a |= a >> 8; a |= a >> 16;
    return a + 1;
}

/// Checks that the running liblua has exactly the layout above, using probe tables, once per
/// process (the first call decides; runtimes on several threads may race, harmlessly); enables
/// luamp_fasttable and returns 1 if so. Must be C: it mirrors C structs Swift cannot see.
int luamp_fasttable_check(lua_State *L);
/// Fills *out for the table at address `table` (lua_topointer); returns 0 when the fast path is
/// off. The pointers stay valid until the table is next modified (no insertion happens while the
/// encoder reads it). Inline: the encoder calls it once per table.
static inline int luamp_fasttable(const void *table, luamp_tableparts *out) {
    if (!luamp_fasttable_ok) return 0;
    const luamp_table54 *t = (const luamp_table54 *)table;
    out->array = t->array;
    out->asize = luamp_table_asize(t);
    out->nodes = t->node;
    out->nsize = 1u << t->lsizenode;
    return 1;
}
/// The metatable (lua_topointer of it) of the table at `table`, or NULL; only once
/// luamp_fasttable returned 1.
static inline const void *luamp_table_metatable(const void *table) {
    return ((const luamp_table54 *)table)->metatable;
}
/// A hash of the table's hash part (keys, values and the node array's address), never 0; 0 when
/// the fast path is off. The codec compares it to notice that package.loaded changed.
uint64_t luamp_table_fingerprint(const void *table);

#endif
