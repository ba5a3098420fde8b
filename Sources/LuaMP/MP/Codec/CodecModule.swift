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
        ReferenceIndex.install(s)
        s.setFunction(t, "dumps") { s in
            try Codec.pushEncoded(s, at: 1, path: "value")
            return 1
        }
        s.setFunction(t, "loads") { s in
            guard s.type(at: 1) == .string, let b = s.toBytes(1) else {
                throw LuaArgumentError(1, "string expected, got \(s.isNoneOrNil(1) ? (s.type(at: 1) == .none ? "no value" : "nil") : s.typeName(at: 1))")
            }
            var allowCode = true
            if !s.isNoneOrNil(2) {
                guard s.type(at: 2) == .table else { throw LuaArgumentError(2, "table expected, got \(s.typeName(at: 2))") }
                s.rawGet(2, field: "functions")
                allowCode = s.optBool(-1, true)
                s.pop()
            }
            try Codec.decode(s, b, allowCode: allowCode)
            return 1
        }
        s.setFunction(t, "register") { s in try register(s) }
    }

    /// `mp.register(name, value)`: `value` crosses by reference under `name` (resolved through
    /// the receiver's own registration). One name per value and one value per name.
    private static func register(_ s: LuaStack) throws -> Int32 {
        guard s.type(at: 1) == .string, let name = s.toString(1), !name.isEmpty, name.utf8.count < 0x10000 else {
            throw LuaArgumentError(1, s.type(at: 1) == .string ? "a non-empty name shorter than 64 KiB expected" : "string expected, got \(s.typeName(at: 1))")
        }
        switch s.type(at: 2) {
        case .table, .function, .userdata, .lightUserdata: break
        default:
            throw LuaArgumentError(2, "table, function or userdata expected, got \(s.typeName(at: 2)) (other values are sent by value)")
        }
        s.rawGet(s.registryIndex(), field: ReferenceIndex.registeredKey)
        let t = s.top
        // One table holds both directions: names are strings, values never are.
        s.pushValue(2)
        if lua_rawget(s.L, t) == LUA_TSTRING, let old = s.toString(-1) {
            if old == name { return 0 }   // the same registration again (e.g. a module loaded twice)
            throw LuaRaise("mp.register: this value is already registered as '\(old)'")
        }
        s.pop()
        if s.rawGet(t, field: name) != .nil {
            throw LuaRaise("mp.register: another value is already registered as '\(name)'")
        }
        s.pop()
        s.pushValue(2); s.rawSet(t, field: name)
        s.pushValue(2); s.push(name); lua_rawset(s.L, t)
        ReferenceIndex.invalidate(s.L)
        return 0
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
