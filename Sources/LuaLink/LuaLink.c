// LuaLink: the one place liblua5.4 is linked (see Package.swift). Everything that runs its own
// Lua — the luamp command, the LuaMP library product, the tests — depends on it; mp.so does not,
// so its lua_* symbols bind to those of the interpreter that loads it.
