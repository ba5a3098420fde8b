// CLua is headers only (include/): Lua 5.4's API for Swift and the C shims. It links nothing —
// liblua is linked by LuaLink alone, so that mp.so can bind to the interpreter that loads it.
