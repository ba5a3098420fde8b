/* mpcounter: a tiny C library whose objects are sendable through __mp_reduce (built by
 * Tests/lua/codec_refs_test.lua). counter = mpcounter.new(n [, mode]); counter:value();
 * counter:add(k). `mode` makes __mp_reduce misbehave on purpose: 1 raises, 2 returns the counter
 * inside its own arguments, 3 returns a number instead of a constructor. */
#include <lua.h>
#include <lauxlib.h>

typedef struct { lua_Integer n; int mode; } counter;

static counter *check(lua_State *L) { return (counter *)luaL_checkudata(L, 1, "mpcounter.Counter"); }

static int c_new(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    int mode = (int)luaL_optinteger(L, 2, 0);
    counter *c = (counter *)lua_newuserdatauv(L, sizeof(counter), 0);
    c->n = n;
    c->mode = mode;
    luaL_setmetatable(L, "mpcounter.Counter");
    return 1;
}

static int c_value(lua_State *L) { lua_pushinteger(L, check(L)->n); return 1; }

static int c_add(lua_State *L) { check(L)->n += luaL_checkinteger(L, 2); lua_settop(L, 1); return 1; }

/* __mp_reduce: `mpcounter.new, n` (new is upvalue 1: a field of the loaded module). */
static int c_reduce(lua_State *L) {
    counter *c = check(L);
    switch (c->mode) {
    case 1: return luaL_error(L, "this counter refuses to be sent");
    case 2: lua_pushvalue(L, lua_upvalueindex(1)); lua_pushvalue(L, 1); return 2;
    case 3: lua_pushinteger(L, 42); return 1;
    default: lua_pushvalue(L, lua_upvalueindex(1)); lua_pushinteger(L, c->n); return 2;
    }
}

int luaopen_mpcounter(lua_State *L) {
    lua_newtable(L);                       /* the module */
    lua_pushcfunction(L, c_new);
    lua_setfield(L, -2, "new");
    luaL_newmetatable(L, "mpcounter.Counter");
    lua_newtable(L);
    lua_pushcfunction(L, c_value); lua_setfield(L, -2, "value");
    lua_pushcfunction(L, c_add); lua_setfield(L, -2, "add");
    lua_setfield(L, -2, "__index");
    lua_getfield(L, -2, "new");
    lua_pushcclosure(L, c_reduce, 1);
    lua_setfield(L, -2, "__mp_reduce");
    lua_pop(L, 1);
    return 1;
}
