// Reading a Lua 5.4 table's array part and hash nodes directly, for the codec's hot loop.
//
// Why: through the public API, encoding one table entry costs 5-7 calls and ~270 instructions
// inside liblua (lua_next, lua_type, lua_tointegerx, lua_isinteger, lua_tonumberx, lua_tolstring,
// lua_settop). Lua 5.4's structs (lobject.h) are mirrored in luamp_shims.h (Table, TValue: the
// encoder reads them inline) and below (Node); luamp_fasttable_check verifies them against the
// running liblua once with probe tables, and if anything differs the fast path stays off and the
// encoder uses the public API (same output).
#include "luamp_shims.h"
#include <string.h>

typedef struct {
    union { void *p; long long i; double n; } value; unsigned char tt, key_tt; int next;
    union { void *p; long long i; double n; } key;
} luamp_node54;    // union Node's NodeKey (lobject.h)

/// 1 once the layout matched (the fast path on; read inline by luamp_fasttable in the header).
int luamp_fasttable_ok = 0;
/// 0 = not checked yet, 1 = the layout matched, 2 = it did not. Checked once per process (the
/// first install), so installs never rewrite luamp_fasttable_ok while another runtime reads it.
static int fasttable_state = 0;

uint64_t luamp_table_fingerprint(const void *table) {
    if (!__atomic_load_n(&luamp_fasttable_ok, __ATOMIC_RELAXED)) return 0;
    const luamp_table54 *t = (const luamp_table54 *)table;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)t->node;
    unsigned int n = 1u << t->lsizenode;
    const luamp_node54 *nodes = (const luamp_node54 *)t->node;
    for (unsigned int i = 0; i < n; i++) {
        if ((nodes[i].tt & 0x0F) == 0) continue;   // empty slot
        h = (h ^ (uint64_t)(uintptr_t)nodes[i].key.p) * 0x100000001B3ull;
        h = (h ^ (uint64_t)(uintptr_t)nodes[i].value.p ^ nodes[i].tt) * 0x100000001B3ull;
    }
    return h | 1;
}

static int string_is(const void *ts, unsigned char tag, const char *s) {
    size_t len = strlen(s);
    const unsigned char *p = (const unsigned char *)ts;
    size_t have = tag == LUAMP_TAG_SHORTSTR ? p[LUAMP_STR_SHORTLEN] : *(const size_t *)(p + LUAMP_STR_LONGLEN);
    return have == len && memcmp(p + LUAMP_STR_CONTENTS, s, len) == 0;
}

static const char LONG_KEY[] = "a long string key, longer than forty bytes, so not interned";

/// The probe: {1.5, 42, true, -2.25} in the array part and four hash entries of every kind.
static int probe(lua_State *L) {
    lua_createtable(L, 4, 4);
    lua_pushnumber(L, 1.5); lua_rawseti(L, -2, 1);
    lua_pushinteger(L, 42); lua_rawseti(L, -2, 2);
    lua_pushboolean(L, 1); lua_rawseti(L, -2, 3);
    lua_pushnumber(L, -2.25); lua_rawseti(L, -2, 4);
    lua_pushstring(L, "abc"); lua_pushnumber(L, 0.5); lua_rawset(L, -3);
    lua_pushinteger(L, 100); lua_pushstring(L, "xyz"); lua_rawset(L, -3);
    lua_pushboolean(L, 0); lua_pushinteger(L, -7); lua_rawset(L, -3);
    lua_pushstring(L, LONG_KEY); lua_pushstring(L, LONG_KEY); lua_rawset(L, -3);
    lua_createtable(L, 0, 0);
    const void *mt = lua_topointer(L, -1);
    lua_setmetatable(L, -2);
    const luamp_table54 *t = (const luamp_table54 *)lua_topointer(L, -1);
    if (t->metatable != mt) return 0;
    if (t->tt != 0x05 || t->alimit != 4 || luamp_table_asize(t) != 4 || t->array == NULL
        || t->lsizenode != 2 || t->node == NULL || t->lastfree == NULL) return 0;   // LUA_VTABLE
    const luamp_tvalue54 *a = (const luamp_tvalue54 *)t->array;
    if (!(a[0].tt == LUAMP_TAG_FLOAT && a[0].value.n == 1.5 && a[1].tt == LUAMP_TAG_INT && a[1].value.i == 42
          && a[2].tt == LUAMP_TAG_TRUE && a[3].tt == LUAMP_TAG_FLOAT && a[3].value.n == -2.25)) return 0;
    int found = 0;
    const luamp_node54 *n = (const luamp_node54 *)t->node;
    for (int i = 0; i < 4; i++) {
        const luamp_node54 *e = &n[i];
        if (e->key_tt == LUAMP_TAG_SHORTSTR && string_is(e->key.p, e->key_tt, "abc")
            && e->tt == LUAMP_TAG_FLOAT && e->value.n == 0.5) found |= 1;
        else if (e->key_tt == LUAMP_TAG_INT && e->key.i == 100 && e->tt == LUAMP_TAG_SHORTSTR
                 && string_is(e->value.p, e->tt, "xyz")) found |= 2;
        else if (e->key_tt == LUAMP_TAG_FALSE && e->tt == LUAMP_TAG_INT && e->value.i == -7) found |= 4;
        else if (e->key_tt == LUAMP_TAG_LONGSTR && string_is(e->key.p, e->key_tt, LONG_KEY)
                 && e->tt == LUAMP_TAG_LONGSTR && string_is(e->value.p, e->tt, LONG_KEY)) found |= 8;
    }
    return found == 15;
}

int luamp_fasttable_check(lua_State *L) {
    int state = __atomic_load_n(&fasttable_state, __ATOMIC_ACQUIRE);
    if (state != 0) return state == 1;
    if (!lua_checkstack(L, 4)) return 0;                 // not decided: the next install tries again
    int ok = lua_version(L) == 504 && sizeof(luamp_tvalue54) == LUAMP_SLOT_SIZE
             && sizeof(luamp_node54) == LUAMP_NODE_SIZE;
    if (ok) {
        int top = lua_gettop(L);
        ok = probe(L);
        lua_settop(L, top);
    }
    // Runtimes installing on several threads at once compute the same answer; the first stays.
    int expected = 0;
    if (__atomic_compare_exchange_n(&fasttable_state, &expected, ok ? 1 : 2, 0, __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
        __atomic_store_n(&luamp_fasttable_ok, ok, __ATOMIC_RELEASE);
    return __atomic_load_n(&fasttable_state, __ATOMIC_ACQUIRE) == 1;
}
