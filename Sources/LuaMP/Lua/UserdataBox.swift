// UserdataBox: the one way a Lua value holds a Swift object — a full userdata with a retained pointer, recognised by its metatable.
internal import CLua
internal import LuaMPShims

/// A full userdata whose one word is a retained `Unmanaged` pointer to a Swift object, with the
/// registry metatable `meta` (made by the capability's installer before the first push).
/// Pools, AsyncResults, pool iterators, processes, pipe ends and the cluster's objects all use
/// it; arena objects use `SharedRef` instead (their identity is the kind magic, `SharedRef.at`).
///
/// Identity: `get` returns the object only when the userdata's metatable is `registry[meta]`
/// (`luaL_testudata`, which never raises for a registered name: the name is an interned key).
/// `__gc` calls `take`, which releases the object once and clears the word, so a resurrected
/// or twice-collected userdata finds nil.
enum UserdataBox {
    /// Pushes a userdata holding `object` with metatable `meta` and `uservalues` user values.
    /// Stack: [-0, +1].
    static func push(_ s: LuaStack, _ object: AnyObject, meta: String, uservalues: Int32) {
        let mem = lua_newuserdatauv(s.L, MemoryLayout<UnsafeMutableRawPointer>.size, uservalues)!
        mem.storeBytes(of: Unmanaged.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer.self)
        s.rawGet(s.registryIndex(), field: meta)
        lua_setmetatable(s.L, -2)
    }

    /// The object in the userdata at `i` if its metatable is `meta`, else nil. Stack: [-0, +0].
    @inline(__always)
    static func get<T: AnyObject>(_ s: LuaStack, _ i: Int32, meta: String, as: T.Type) -> T? {
        // withCString: a native string's own bytes, no C copy made per call.
        guard let mem = meta.withCString({ luaL_testudata(s.L, i, $0) }), let raw = mem.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return Unmanaged<T>.fromOpaque(raw).takeUnretainedValue()
    }

    /// For `__gc`: releases the object once. Returns it (alive until the caller is done) or nil.
    static func take<T: AnyObject>(_ s: LuaStack, _ i: Int32, as: T.Type) -> T? {
        guard let mem = s.toUserdata(i), let raw = mem.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        mem.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
        return Unmanaged<T>.fromOpaque(raw).takeRetainedValue()
    }
}
