// Lua 5.4's public headers, for Swift (macros live in LuaMPShims).
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
