// LuaLink has no API: depending on it links liblua5.4 (see LuaLink.c).
