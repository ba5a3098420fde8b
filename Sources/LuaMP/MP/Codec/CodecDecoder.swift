// The decoder: reads the wire format from untrusted bytes and pushes Lua values (bounds-checked, depth-limited).
internal import CLua
internal import LuaMPShims

/// One decoding pass. The caller pushes a placeholder at `refs` (replaced by a table the first
/// time a shared object appears) and restores the stack on failure.
struct Decoder {
    let L: OpaquePointer
    var r: ByteReader
    /// Stack index of the shared-object table (offset → object); nil until the first shared object.
    let refs: Int32
    var haveRefs = false
    /// False for `mp.loads(s, {functions = false})`: every function, global, reference, userdata
    /// rebuild and file is refused.
    var allowCode = true

    init(_ L: OpaquePointer, _ bytes: UnsafeRawBufferPointer, refs: Int32) {
        self.L = L
        self.r = ByteReader(bytes)
        self.refs = refs
    }

    /// Reads the two header bytes and checks version and kind.
    mutating func header(kind: UInt8) throws(MPError) {
        let v = try r.u8()
        guard v >= CodecFormat.oldestReadable && v <= CodecFormat.version else {
            throw MPError("DecodeError", "unsupported message format version \(v) (this luamp reads version \(CodecFormat.version))")
        }
        let k = try r.u8()
        guard k == kind else {
            throw r.failure(k == CodecFormat.kindTuple || k == CodecFormat.kindValue
                ? "expected a \(kind == CodecFormat.kindTuple ? "tuple" : "single value") message" : "unknown message kind \(k)", at: 1)
        }
    }

    /// Fails unless every byte was consumed.
    func finish() throws(MPError) {
        guard r.atEnd else { throw r.failure("\(r.remaining) trailing bytes") }
    }

    func check(_ depth: Int, _ at: Int) throws(MPError) {
        guard depth < CodecFormat.maxDepth else { throw r.failure("nesting deeper than \(CodecFormat.maxDepth) levels", at: at) }
    }

    /// Remembers the object on top of the stack as the shared object at `offset`. Stack: [-0, +0].
    mutating func remember(_ offset: Int) {
        if !haveRefs {
            lua_createtable(L, 0, 4)
            luamp_replace(L, refs)
            haveRefs = true
        }
        lua_pushvalue(L, -1)
        lua_rawseti(L, refs, lua_Integer(offset))
    }

    /// Decodes one value and pushes it. Stack: [-0, +1] on success.
    mutating func value(depth: Int) throws(MPError) {
        // Memory ran out under this decode (the reserve was spent): stop before the next
        // allocation, which could raise over Swift frames.
        if luamp_memory_low() != 0 { throw MPError.outOfMemory }
        let at = r.pos
        let tag = try r.u8()
        switch tag {
        case CodecFormat.Tag.nil: lua_pushnil(L)
        case CodecFormat.Tag.false: lua_pushboolean(L, 0)
        case CodecFormat.Tag.true: lua_pushboolean(L, 1)
        case CodecFormat.Tag.int8: lua_pushinteger(L, lua_Integer(try r.int(Int8.self)))
        case CodecFormat.Tag.int32: lua_pushinteger(L, lua_Integer(try r.int(Int32.self)))
        case CodecFormat.Tag.int64: lua_pushinteger(L, lua_Integer(try r.int(Int64.self)))
        case CodecFormat.Tag.float: lua_pushnumber(L, Double(bitPattern: try r.int(UInt64.self)))
        case CodecFormat.Tag.str8: try pushString(r.bytes(r.u8()))
        case CodecFormat.Tag.str32: try pushString(r.bytes(r.int(UInt32.self)))
        case CodecFormat.Tag.str64: try pushString(r.bytes(r.int(UInt64.self)))
        case CodecFormat.Tag.table, CodecFormat.Tag.sharedTable:
            try table(shared: tag == CodecFormat.Tag.sharedTable, meta: false, at: at, depth: depth)
        case CodecFormat.Tag.metaTable, CodecFormat.Tag.sharedMetaTable:
            try table(shared: tag == CodecFormat.Tag.sharedMetaTable, meta: true, at: at, depth: depth)
        case CodecFormat.Tag.reference, CodecFormat.Tag.sharedReference:
            try refuseCode("a reference to a module value or registered value", at)
            try reference(shared: tag == CodecFormat.Tag.sharedReference, at: at)
        case CodecFormat.Tag.reduced, CodecFormat.Tag.sharedReduced:
            try refuseCode("a userdata rebuilt by a constructor", at)
            try reduced(shared: tag == CodecFormat.Tag.sharedReduced, at: at, depth: depth)
        case CodecFormat.Tag.file:
            try refuseCode("an open file", at)
            try file(at: at)
        case CodecFormat.Tag.ref:
            let off = try r.int(UInt64.self)
            guard haveRefs, off < UInt64(at),
                  lua_rawgeti(L, refs, lua_Integer(off)) != LUA_TNIL else {
                throw r.failure("reference to unknown object \(off)", at: at)
            }
        case CodecFormat.Tag.function, CodecFormat.Tag.sharedFunction:
            try refuseCode("a function", at)
            try function(shared: tag == CodecFormat.Tag.sharedFunction, at: at, depth: depth)
        case CodecFormat.Tag.globals:
            try refuseCode("the globals table", at)
            luamp_pushglobaltable(L)
        case CodecFormat.Tag.cfunction:
            try refuseCode("a C function", at)
            let name = String(decoding: try r.bytes(r.u8()), as: UTF8.self)
            guard CodecNames.push(L, name: name) else {
                throw MPError("DecodeError", "unknown C function '\(name)' (not a standard-library or mp function here)")
            }
        case CodecFormat.Tag.handle:
            try handle(at: at)
        default:
            throw r.failure("unknown value tag 0x\(String(tag, radix: 16))", at: at)
        }
    }

    /// Values this big (table entries, string bytes) are allocated under a protected call, so
    /// running out of memory is an error here, not a raise over the decoder's frames.
    static let protectedSize = 4096

    @inline(__always)
    private func pushString(_ b: UnsafeRawBufferPointer) throws(MPError) {
        let p = b.baseAddress?.assumingMemoryBound(to: CChar.self)
        if b.count <= Decoder.protectedSize * 16 {
            _ = lua_pushlstring(L, p, b.count)
        } else if luamp_ppushlstring(L, p, b.count) != LUA_OK {
            throw MPError.outOfMemory
        }
    }

    private mutating func table(shared: Bool, meta: Bool, at: Int, depth: Int) throws(MPError) {
        let narr = Int(try r.int(UInt32.self))
        let npairs = Int(try r.int(UInt32.self))
        // Each value takes at least one byte: counts beyond the input left are lies.
        guard narr <= r.remaining, npairs <= r.remaining / 2 else {
            throw r.failure("table counts \(narr)/\(npairs) exceed the input left", at: at)
        }
        try check(depth, at)
        // Presized (so filling it never reallocates under Swift frames); the counts are bounded
        // by the input left, so a hostile message can make at most ~16 bytes per byte of
        // itself. Big tables are created under protection: out of memory is an error.
        if narr <= Decoder.protectedSize && npairs <= Decoder.protectedSize {
            lua_createtable(L, Int32(narr), Int32(npairs))
        } else {
            let status = luamp_pcreatetable(L, Int32(clamping: narr), Int32(clamping: npairs))
            if status == LUA_ERRMEM { throw MPError.outOfMemory }
            if status != LUA_OK { throw r.failure("table counts \(narr)/\(npairs) are too big for a Lua table", at: at) }
        }
        let t = lua_gettop(L)
        if shared { remember(at) }
        var i = 1
        while i <= narr {
            try value(depth: depth + 1)
            lua_rawseti(L, t, lua_Integer(i))
            i += 1
        }
        var j = 0
        while j < npairs {
            let kAt = r.pos
            // A short string key (most keys) can be neither nil nor NaN: no type check.
            let shortString = r.peek() == CodecFormat.Tag.str8
            try value(depth: depth + 1)
            if !shortString {
                switch lua_type(L, -1) {
                case LUA_TNIL:
                    throw r.failure("nil table key", at: kAt)
                case LUA_TNUMBER where lua_isinteger(L, -1) == 0 && lua_tonumberx(L, -1, nil).isNaN:
                    throw r.failure("NaN table key", at: kAt)
                default:
                    break
                }
            }
            try value(depth: depth + 1)
            lua_rawset(L, t)
            j += 1
        }
        if meta {
            let mAt = r.pos
            try value(depth: depth + 1)
            guard lua_type(L, -1) == LUA_TTABLE else { throw r.failure("metatable is not a table", at: mAt) }
            lua_setmetatable(L, t)
        }
    }

    private mutating func function(shared: Bool, at: Int, depth: Int) throws(MPError) {
        let chunk = try r.bytes(r.int(UInt32.self))
        let mac = try r.int(UInt64.self)
        guard CodecKey.mac(chunk) == mac else {
            throw MPError("DecodeError", "function from an unverified source (functions load only from this luamp process tree)")
        }
        try check(depth, at)
        let status = luamp_loadbuffer(L, chunk.baseAddress?.assumingMemoryBound(to: CChar.self), chunk.count, "=mp", "b")
        guard status == LUA_OK else {
            let msg = lua_tolstring(L, -1, nil).map { String(cString: $0) } ?? "?"
            lua_settop(L, -2)
            throw MPError("DecodeError", "cannot load function: \(msg)")
        }
        let f = lua_gettop(L)
        if shared { remember(at) }
        let nups = Int32(try r.u8())
        var i: Int32 = 1
        while i <= nups {
            guard lua_getupvalue(L, f, i) != nil else {
                throw r.failure("function has fewer than \(nups) upvalues", at: at)
            }
            lua_settop(L, -2)
            if r.remaining > 0 && r.base.load(fromByteOffset: r.pos, as: UInt8.self) == CodecFormat.Tag.joinedUpvalue {
                try join(f, i)
            } else {
                try value(depth: depth + 1)
                lua_setupvalue(L, f, i)
            }
            i += 1
        }
    }

    /// Makes upvalue `i` of the function at `f` the same variable as an upvalue of an earlier
    /// shared Lua function; both indices are checked first (lua_upvaluejoin does not check them).
    private mutating func join(_ f: Int32, _ i: Int32) throws(MPError) {
        let at = r.pos
        _ = try r.u8()
        let off = try r.int(UInt64.self)
        let n = Int32(try r.u8())
        guard haveRefs, off < UInt64(at), lua_rawgeti(L, refs, lua_Integer(off)) == LUA_TFUNCTION,
              lua_iscfunction(L, -1) == 0 else {
            throw r.failure("joined upvalue names no earlier Lua function", at: at)
        }
        guard n >= 1, lua_getupvalue(L, -1, n) != nil else {
            throw r.failure("joined upvalue \(n) does not exist", at: at)
        }
        lua_settop(L, -2)
        lua_upvaluejoin(L, f, i, -1, n)
        lua_settop(L, -2)
    }

    private mutating func handle(at: Int) throws(MPError) {
        let name = String(decoding: try r.bytes(r.u8()), as: UTF8.self)
        let payload = try r.bytes(r.int(UInt32.self))
        guard let kind = Handles.kind(named: name) else {
            throw MPError("DecodeError", "unknown mp object kind '\(name)'")
        }
        let top = lua_gettop(L)
        do {
            try kind.decode(LuaStack(L), payload)
        } catch let e as MPError {
            lua_settop(L, top)
            throw e
        } catch {
            lua_settop(L, top)
            throw MPError("DecodeError", "cannot decode \(name): \(error)")
        }
        guard lua_gettop(L) == top + 1 else {
            lua_settop(L, top)
            throw MPError("DecodeError", "decoder for \(name) did not push one value")
        }
    }
}
