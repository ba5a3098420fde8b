// mp.so's entry point: `require "mp"` in the stock lua5.4 (LUA_CPATH pointing at the library).
@_spi(HostModule) import LuaMP

/// Called by Lua's `require "mp"`: returns the mp table (see `HostModule`).
@_cdecl("luaopen_mp")
public func luaopen_mp(_ L: OpaquePointer?) -> Int32 {
    HostModule.open(L!)
}
