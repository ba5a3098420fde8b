// The encoder: walks a value on the Lua stack and writes the wire format (no per-value allocations).
internal import CLua
internal import LuaMPShims
import Synchronization

/// Collects `lua_dump`'s output into the encoder's buffer (`ud` points at a `ByteWriter`).
private func dumpWriter(_ L: OpaquePointer?, _ p: UnsafeRawPointer?, _ size: Int, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    if let p, size > 0 { ud!.assumingMemoryBound(to: ByteWriter.self).pointee.append(p, size) }
    return 0
}

/// One encoding pass over stack values. Owns malloc'd buffers: call `release()` when done.
struct Encoder {
    let L: OpaquePointer
    var w: ByteWriter
    /// Tables and Lua functions already written: address → offset of their tag.
    var seen = PointerMap()
    /// Upvalues (`lua_upvalueid`) already written: → function message offset << 8 | upvalue index.
    var upvalues = PointerMap()
    /// Absolute stack index of the sender's globals table.
    let globals: Int32
    /// Its address: a table with this address is the globals table.
    let globalsPointer: UnsafeRawPointer?
    /// Whether tables may be read from memory (tests turn it off to exercise the API path).
    /// Per process; an atomic, so a test thread may flip it while other runtimes encode.
    static var fastTables: Bool {
        get { fastTablesAllowed.load(ordering: .relaxed) }
        set { fastTablesAllowed.store(newValue, ordering: .relaxed) }
    }
    private static let fastTablesAllowed = Atomic<Bool>(true)
    /// Strings at least this long are kept out of the buffer in external mode (`init(external:)`).
    static let externalThreshold = 64 << 10
    /// Stack index of the table anchoring big strings kept out of the buffer; 0 when every
    /// string is copied into the buffer.
    let anchor: Int32
    /// Buffer offsets where the anchored strings belong, in order (anchor[1], anchor[2], …).
    var splits: [Int] = []
    /// Total bytes of anchored strings up to and including string i.
    var externalAfter: [Int] = []
    /// Bytes of anchored strings so far: message offset = buffer offset + this.
    var externalBytes = 0
    /// Whether this encoder paused the garbage collector (and must restart it).
    var pausedGC = false
    /// Whether `holdGC` ran (the collector is paused, or was not running).
    var gcHeld = false
    /// The state's by-reference index (`CodecReferences.swift`), loaded at the first object of a
    /// message, and a copy of its object map (not owned here: never released by the encoder).
    var refs: ReferenceIndex?
    var refMap = PointerMap()
    /// The index's Bloom filter; until the index is loaded, one with every bit set (so the first
    /// object of a message takes the slow path, which loads it).
    var refFilter: UnsafePointer<UInt64> = ReferenceIndex.fullFilter
    /// 0: index not loaded yet; 1: loaded; 2: rebuilt after a miss (at most once per message).
    var refsState: UInt8 = 0
    /// How many times Lua code ran during this message (`__mp_reduce`): a table being read is
    /// checked for changes after a nested value whenever this moved.
    var luaRuns = 0
    /// Userdata whose `__mp_reduce` arguments are being written (a userdata inside its own).
    var reducing: [UnsafeRawPointer] = []
    /// The key of function and reference MACs: nil, this process tree's (`CodecKey`); a cluster
    /// key for messages that cross Redis to other machines (`ClusterCodec`), which also refuses
    /// what only makes sense inside one tree (mp objects, open files).
    var remoteKey: (UInt64, UInt64)?

    /// The MAC of `b` under this message's key.
    @inline(__always) func mac(_ b: UnsafeRawBufferPointer) -> UInt64 {
        if let k = remoteKey { return SipHash24.mac(b, key: k) }
        return CodecKey.mac(b)
    }

    /// Pushes the globals table, and with `external` an anchor table: then strings of 64 KiB or
    /// more are not copied but recorded in `splits` (the caller restores the stack top afterwards).
    init(_ L: OpaquePointer, external: Bool = false) {
        self.L = L
        luamp_pushglobaltable(L)
        globals = lua_gettop(L)
        globalsPointer = lua_topointer(L, globals)
        if external {
            lua_createtable(L, 0, 0)
            anchor = lua_gettop(L)
        } else {
            anchor = 0
        }
        w = ByteWriter(capacity: 256)
    }

    /// No GC step (so no finalizer running Lua code) may happen while tables are being read.
    /// Only API calls that push new strings or objects run a GC step (`luaC_checkGC`); plain
    /// traversal, numbers, booleans and `lua_dump` never do. So the collector is paused lazily,
    /// just before the first such call: pausing costs nothing, but restarting it resets Lua's GC
    /// debt and forces a step on the next allocation (docs/codec.md, "Performance").
    @inline(__always)
    mutating func holdGC() {
        if !gcHeld {
            gcHeld = true
            pausedGC = luamp_gc_pause(L) != 0
        }
    }

    /// Frees the buffers and restarts the garbage collector.
    func release() {
        w.release()
        seen.release()
        upvalues.release()
        if pausedGC { luamp_gc_resume(L) }
    }

    /// Writes the value at absolute index `idx`.
    @inline(__always)
    mutating func value(_ idx: Int32, depth: Int) throws(EncodeFailure) {
        try value(idx, type: lua_type(L, idx), depth: depth)
    }

    /// Writes the value at absolute index `idx`, whose `lua_type` the caller already knows.
    mutating func value(_ idx: Int32, type: Int32, depth: Int) throws(EncodeFailure) {
        switch type {
        case LUA_TNIL, LUA_TNONE:
            w.u8(CodecFormat.Tag.nil)
        case LUA_TBOOLEAN:
            w.u8(lua_toboolean(L, idx) != 0 ? CodecFormat.Tag.true : CodecFormat.Tag.false)
        case LUA_TNUMBER:
            if lua_isinteger(L, idx) != 0 {
                integer(Int64(lua_tointegerx(L, idx, nil)))
            } else {
                w.tagged(CodecFormat.Tag.float, lua_tonumberx(L, idx, nil).bitPattern)
            }
        case LUA_TSTRING:
            var len = 0
            let p = lua_tolstring(L, idx, &len)!
            string(UnsafeRawPointer(p), len, at: idx)
        case LUA_TTABLE:
            try table(idx, depth: depth)
        case LUA_TFUNCTION:
            try function(idx, depth: depth)
        case LUA_TUSERDATA:
            try userdata(idx, depth: depth)
        case LUA_TLIGHTUSERDATA:
            if let e = referenceEntry(idx, type: LUA_TLIGHTUSERDATA, retry: true) { return writeReference(e, nil) }
            throw EncodeFailure("cannot send a light userdata (\(ReferenceIndex.help))")
        case LUA_TTHREAD:
            throw EncodeFailure("cannot send a thread (coroutine)")
        default:
            throw EncodeFailure("cannot send a \(String(cString: lua_typename(L, lua_type(L, idx))))")
        }
    }

    @inline(__always)
    mutating func integer(_ i: Int64) {
        if i >= -128 && i <= 127 {
            w.tagged(CodecFormat.Tag.int8, Int8(truncatingIfNeeded: i))
        } else if i >= Int64(Int32.min) && i <= Int64(Int32.max) {
            w.tagged(CodecFormat.Tag.int32, Int32(truncatingIfNeeded: i))
        } else {
            w.tagged(CodecFormat.Tag.int64, i)
        }
    }

    /// A string; a big one in external mode is anchored instead of copied (`idx` is where it is).
    @inline(__always)
    mutating func string(_ p: UnsafeRawPointer, _ len: Int, at idx: Int32) {
        if anchor != 0 && len >= Encoder.externalThreshold {
            if len <= Int(UInt32.max) {
                w.tagged(CodecFormat.Tag.str32, UInt32(len))
            } else {
                w.tagged(CodecFormat.Tag.str64, UInt64(len))
            }
            lua_pushvalue(L, idx)
            lua_rawseti(L, anchor, lua_Integer(splits.count + 1))
            splits.append(w.count)
            externalBytes += len
            externalAfter.append(externalBytes)
            return
        }
        string(p, len)
    }

    @inline(__always)
    mutating func string(_ p: UnsafeRawPointer, _ len: Int) {
        if len < 256 {
            w.shortString(CodecFormat.Tag.str8, p, len)
            return
        } else if len <= Int(UInt32.max) {
            w.reserve(5 + len)
            w.tagged(CodecFormat.Tag.str32, UInt32(len))
        } else {
            w.tagged(CodecFormat.Tag.str64, UInt64(len))
        }
        w.append(p, len)
    }

    /// A reference to an object already written at `offset`; marks that object as shared.
    mutating func reference(_ offset: Int) {
        markShared(bufferOffset(ofMessageOffset: offset))
        w.tagged(CodecFormat.Tag.ref, UInt64(offset))
    }

    /// Turns the object tag at buffer offset `at` into its shared variant.
    private mutating func markShared(_ at: Int) {
        let tag = w.byte(at: at)
        if let shared = CodecFormat.Tag.shared(tag) { w.patchByte(shared, at: at) }
    }

    /// Where message offset `m` (of an object's tag) lies in the buffer: minus the anchored
    /// strings before it. Each anchored string ends at message offset `splits[i] + externalBefore[i+1]`.
    private func bufferOffset(ofMessageOffset m: Int) -> Int {
        var i = splits.count - 1
        while i >= 0 {
            if splits[i] + externalAfter[i] <= m { return m - externalAfter[i] }
            i -= 1
        }
        return m
    }

    @inline(__always)
    func checkDepth(_ depth: Int) throws(EncodeFailure) {
        guard depth < CodecFormat.maxDepth else { throw Encoder.tooDeep() }
    }

    @inline(never)
    static func tooDeep() -> EncodeFailure {
        EncodeFailure("nesting deeper than \(CodecFormat.maxDepth) levels")
    }

    /// A table: the globals marker, a reference to a table already written, or the table
    /// itself (from memory when the layout check passed, else through `lua_next`).
    mutating func table(_ t: Int32, depth: Int) throws(EncodeFailure) {
        let p = lua_topointer(L, t)!
        if p == globalsPointer {
            w.u8(CodecFormat.Tag.globals)
            return
        }
        if let off = seen.get(p) { return reference(off) }
        if ReferenceIndex.mayContain(refFilter, p), let e = referenceEntry(object: p) { return writeReference(e, p) }
        try checkDepth(depth)
        let tagPos = w.count
        seen.insert(p, tagPos + externalBytes)
        var parts = luamp_tableparts()
        let fast = Encoder.fastTables && luamp_fasttable(p, &parts) != 0
        // An instance: its metatable is held on the stack while the body is written, then sent.
        let meta: Int32 = (fast ? luamp_table_metatable(p) != nil : true) && lua_getmetatable(L, t) != 0 ? lua_gettop(L) : 0
        w.reserve(9)
        w.u8(meta != 0 ? CodecFormat.Tag.metaTable : CodecFormat.Tag.table)
        w.int(UInt64(0))   // both counts, patched below
        var narr: Int64 = 0
        var npairs: Int64 = 0
        if fast, let counts = try fastTableBody(t, parts, depth: depth) {
            (narr, npairs) = counts
        } else {
            try apiTableBody(t, narr: &narr, npairs: &npairs, depth: depth)
        }
        guard narr <= Int64(UInt32.max), npairs <= Int64(UInt32.max) else {
            throw EncodeFailure("table too large to send (more than 2^32 entries)")
        }
        w.patch(UInt32(narr), at: tagPos + 1)
        w.patch(UInt32(npairs), at: tagPos + 5)
        if meta != 0 { try metatable(meta, depth: depth) }
    }

    /// The metatable at `meta` (pushed by `table`) after its table's body; pops it.
    @inline(never)
    private mutating func metatable(_ meta: Int32, depth: Int) throws(EncodeFailure) {
        do { try table(meta, depth: depth + 1) } catch {
            var e = error; e.components.append(CodecPath.metatable); throw e
        }
        lua_settop(L, meta - 1)
    }

    /// The table body through the public API: one `lua_next` pass; keys 1, 2, 3… met first go
    /// to the array section, the rest (from the first key out of sequence on) are pairs.
    private mutating func apiTableBody(_ t: Int32, narr: inout Int64, npairs: inout Int64, depth: Int) throws(EncodeFailure) {
        lua_pushnil(L)
        let k = lua_gettop(L)
        let v = k + 1
        while lua_next(L, t) != 0 {
            // Integral float keys are stored as integers by Lua, so a number key equal to
            // narr + 1 is the integer key narr + 1.
            let kt = lua_type(L, k)
            let runs = luaRuns
            if npairs == 0 && kt == LUA_TNUMBER && lua_tointegerx(L, k, nil) == narr + 1 {
                let vt = lua_type(L, v)
                if !scalar(v, type: vt) {
                    do { try value(v, type: vt, depth: depth + 1) } catch {
                        var e = error; e.components.append("[\(narr + 1)]"); throw e
                    }
                }
                narr += 1
            } else {
                if !scalar(k, type: kt) {
                    do { try value(k, type: kt, depth: depth + 1) } catch {
                        var e = error; e.components.append(CodecPath.key); throw e
                    }
                }
                let vt = lua_type(L, v)
                if !scalar(v, type: vt) {
                    do { try value(v, type: vt, depth: depth + 1) } catch {
                        var e = error; e.components.append(CodecPath.component(forKeyAt: k, L)); throw e
                    }
                }
                npairs += 1
            }
            lua_settop(L, k)
            // lua_next raises for a key no longer in the table: after Lua code ran, check it is.
            if runs != luaRuns {
                lua_pushvalue(L, k)
                let gone = lua_rawget(L, t) == LUA_TNIL
                lua_settop(L, k)
                if gone { throw Encoder.changed() }
            }
        }
        lua_settop(L, k - 1)
    }

    /// The failure for a table that Lua code (an `__mp_reduce`) modified while it was being read.
    @inline(never)
    static func changed() -> EncodeFailure {
        EncodeFailure("the table changed while it was being sent (by an __mp_reduce)")
    }


    /// Writes a number, short string or boolean inline (the table loop's fast path); returns
    /// false, writing nothing, for every other type.
    @inline(__always)
    private mutating func scalar(_ idx: Int32, type: Int32) -> Bool {
        if type == LUA_TNUMBER {
            if lua_isinteger(L, idx) != 0 {
                integer(Int64(lua_tointegerx(L, idx, nil)))
            } else {
                w.tagged(CodecFormat.Tag.float, lua_tonumberx(L, idx, nil).bitPattern)
            }
            return true
        }
        if type == LUA_TSTRING {
            var len = 0
            let p = lua_tolstring(L, idx, &len)!
            if len >= 256 { return false }
            w.shortString(CodecFormat.Tag.str8, p, len)
            return true
        }
        if type == LUA_TBOOLEAN {
            w.u8(lua_toboolean(L, idx) != 0 ? CodecFormat.Tag.true : CodecFormat.Tag.false)
            return true
        }
        return false
    }

    /// A Lua function (bytecode + MAC + upvalues) or a standard C function by name.
    mutating func function(_ f: Int32, depth: Int) throws(EncodeFailure) {
        if lua_iscfunction(L, f) != 0 {
            holdGC()   // the name lookup pushes a string
            if let name = CodecNames.name(L, at: f) {
                var n = name
                n.withUTF8 { b in
                    w.tagged(CodecFormat.Tag.cfunction, UInt8(b.count))
                    w.append(b.baseAddress!, b.count)
                }
                return
            }
            let p = lua_topointer(L, f)
            if let p, let off = seen.get(p) { return reference(off) }
            if let e = referenceEntry(f, type: LUA_TFUNCTION, retry: true) { return writeReference(e, p) }
            throw EncodeFailure("cannot send a C function (\(ReferenceIndex.help))")
        }
        let p = lua_topointer(L, f)!
        if let off = seen.get(p) { return reference(off) }
        if ReferenceIndex.mayContain(refFilter, p), let e = referenceEntry(object: p) { return writeReference(e, p) }
        try checkDepth(depth)
        let tagPos = w.count
        seen.insert(p, tagPos + externalBytes)
        w.tagged(CodecFormat.Tag.function, UInt32(0))
        let start = w.count
        lua_pushvalue(L, f)
        _ = withUnsafeMutablePointer(to: &w) { lua_dump(L, dumpWriter, $0, 0) }
        lua_settop(L, -2)
        let len = w.count - start
        guard len <= Int(UInt32.max) else { throw EncodeFailure("function too large to send") }
        w.patch(UInt32(len), at: tagPos + 1)
        w.int(w.failed ? 0 : mac(UnsafeRawBufferPointer(start: w.base + start, count: len)))
        var n: Int32 = 0
        while lua_getupvalue(L, f, n + 1) != nil {
            lua_settop(L, -2)
            n += 1
        }
        w.u8(UInt8(truncatingIfNeeded: n))
        let messageOffset = tagPos + externalBytes
        var i: Int32 = 1
        while i <= n {
            let name = lua_getupvalue(L, f, i)
            // A variable captured by several closures of this message stays one variable:
            // later closures join the first one's upvalue instead of carrying a copy.
            if lua_topointer(L, -1) != globalsPointer || lua_type(L, -1) != LUA_TTABLE,
               let id = lua_upvalueid(L, f, i) {
                if let first = upvalues.get(id) {
                    markShared(bufferOffset(ofMessageOffset: first >> 8))
                    w.tagged(CodecFormat.Tag.joinedUpvalue, UInt64(first >> 8))
                    w.u8(UInt8(first & 0xFF))
                    lua_settop(L, -2)
                    i += 1
                    continue
                }
                upvalues.insert(id, messageOffset << 8 | Int(i))
            }
            do { try value(lua_gettop(L), depth: depth + 1) } catch {
                var e = error
                e.components.append(CodecPath.upvalue(name.map { String(cString: $0) } ?? "?"))
                throw e
            }
            lua_settop(L, -2)
            i += 1
        }
    }

    /// A full userdata: an mp object, an open file, a value by reference, or the result of its
    /// `__mp_reduce`.
    mutating func userdata(_ idx: Int32, depth: Int) throws(EncodeFailure) {
        holdGC()   // kind lookups and handle encoders push strings
        if let kindName = Handles.kindName(LuaStack(L), at: idx), let kind = Handles.kind(named: kindName) {
            if remoteKey != nil { throw EncodeFailure("cannot send a \(kindName) to another machine (it lives in this process tree; use mp.Queue{address = …} to share a queue through Redis)") }
            return try handle(idx, kindName, kind)
        }
        let p = lua_topointer(L, idx)!
        if let off = seen.get(p) { return reference(off) }
        var position: Int64 = -1
        let fd = luamp_file_descriptor(L, idx, &position)
        if fd != -2 {
            if remoteKey != nil { throw EncodeFailure("cannot send an open file to another machine (send its path or contents)") }
            return try file(fd, position: position)
        }
        if let e = referenceEntry(idx, type: LUA_TUSERDATA, retry: true) { return writeReference(e, p) }
        if try reduced(idx, p, depth: depth) { return }
        throw EncodeFailure("cannot send a userdata (\(ReferenceIndex.help), or give its metatable an __mp_reduce)")
    }

    /// An mp object (`__mpkind` in its metatable, registered in `Handles`).
    private mutating func handle(_ idx: Int32, _ kindName: String, _ kind: HandleKind) throws(EncodeFailure) {
        let s = LuaStack(L)
        let payload: [UInt8]
        do { payload = try kind.encode(s, idx) } catch {
            throw EncodeFailure("cannot send this \(kindName): \(error)")
        }
        guard kindName.utf8.count < 256, payload.count <= Int(UInt32.max) else {
            throw EncodeFailure("cannot send this \(kindName): encoding too large")
        }
        var n = kindName
        n.withUTF8 { b in
            w.tagged(CodecFormat.Tag.handle, UInt8(b.count))
            w.append(b.baseAddress!, b.count)
        }
        w.int(UInt32(payload.count))
        payload.withUnsafeBytes { w.append($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, $0.count) }
    }
}
