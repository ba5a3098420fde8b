// mp.dumps / mp.loads: the codec as users see it, and the codec's install step.
internal import CLua
internal import LuaMPShims

extension MPModule {
    /// Installs `mp.dumps` and `mp.loads`, creates the process tree's MAC key (so every fork
    /// inherits it) and snapshots the standard-library C functions sent by name.
    static func installCodec(_ s: LuaStack, _ t: Int32) {
        CodecKey.prepare()
        _ = luamp_fasttable_check(s.L)
        CodecNames.install(s, mp: t)
        s.setFunction(t, "dumps") { s in
            try Codec.pushEncoded(s, at: 1, path: "value")
            return 1
        }
        s.setFunction(t, "loads") { s in
            guard s.type(at: 1) == .string, let b = s.toBytes(1) else {
                throw LuaArgumentError(1, "string expected, got \(s.isNoneOrNil(1) ? (s.type(at: 1) == .none ? "no value" : "nil") : s.typeName(at: 1))")
            }
            try Codec.decode(s, b)
            return 1
        }
    }
}

extension Codec {
    /// Encodes the value at `index` and pushes the message as a Lua string. Strings of 64 KiB
    /// or more are not copied into the encoder's buffer: the message is assembled by one
    /// `lua_concat`, so each big string is copied exactly once. Stack: [-0, +1].
    /// - Throws: `MPError("SendError", …)`, or `LuaError.memory`.
    static func pushEncoded(_ s: LuaStack, at index: Int32, path: String) throws {
        let L = s.L
        let idx = lua_absindex(L, index)
        let top = lua_gettop(L)
        guard lua_checkstack(L, CodecFormat.stackNeeded) != 0 else { throw MPError("SendError", "\(path): Lua stack overflow") }
        var enc = Encoder(L, external: true)
        defer { enc.release() }
        enc.w.u8(CodecFormat.version)
        enc.w.u8(CodecFormat.kindValue)
        do { try enc.value(idx, depth: 0) } catch {
            lua_settop(L, top)
            try enc.checkMemory()
            throw error.sendError(root: path)
        }
        do { try enc.checkMemory() } catch {
            lua_settop(L, top)
            throw error
        }
        let buf = enc.w.bytes
        guard !enc.splits.isEmpty else {
            lua_settop(L, top)
            s.push(bytes: buf)
            return
        }
        let pieces = Int32(2 * enc.splits.count + 1)
        guard lua_checkstack(L, pieces + 4) != 0 else {
            lua_settop(L, top)
            throw MPError("SendError", "\(path): too many big strings in one message")
        }
        var from = 0
        for (i, at) in enc.splits.enumerated() {
            s.push(bytes: UnsafeRawBufferPointer(rebasing: buf[from..<at]))
            lua_rawgeti(L, enc.anchor, lua_Integer(i + 1))
            from = at
        }
        s.push(bytes: UnsafeRawBufferPointer(rebasing: buf[from...]))
        let status = luamp_pconcat(L, pieces)
        if status != LUA_OK {
            let e = s.popError(status: status)
            lua_settop(L, top)
            throw e
        }
        lua_copy(L, -1, top + 1)
        lua_settop(L, top + 1)
    }
}
