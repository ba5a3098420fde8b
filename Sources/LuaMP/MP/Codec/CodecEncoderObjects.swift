// The encoder's paths for values that are not copied: references by name, __mp_reduce results, open files.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension Encoder {
    /// Loads the state's by-reference index for this message (rebuilt when stale, or `force`d
    /// after a miss) and copies its object map.
    @inline(never)
    mutating func loadReferences(force: Bool) {
        if refs == nil { refs = ReferenceIndex.of(L) }
        guard let r = refs else {
            refsState = 2
            refFilter = ReferenceIndex.emptyFilter
            return
        }
        if force || r.isStale(L) {
            holdGC()   // building pushes strings and tables
            r.rebuild(L)
        }
        refMap = r.objects
        refFilter = UnsafePointer(r.filter)
        refsState = force ? 2 : 1
    }

    /// The entry for the table or Lua function at `p`, once the filter said it may have one.
    @inline(never)
    mutating func referenceEntry(object p: UnsafeRawPointer) -> Int? {
        if refsState == 0 {
            loadReferences(force: false)
            guard ReferenceIndex.mayContain(refFilter, p) else { return nil }
        }
        return refMap.get(p)
    }

    /// The index entry for the value at `idx` (of `type`); with `retry`, a miss rebuilds the
    /// index once per message (for values that could not be sent otherwise).
    mutating func referenceEntry(_ idx: Int32, type: Int32, retry: Bool) -> Int? {
        if refsState == 0 { loadReferences(force: false) }
        if let e = refs?.lookup(L, idx, type: type, objects: refMap) { return e }
        guard retry, refsState == 1 else { return nil }
        loadReferences(force: true)
        return refs?.lookup(L, idx, type: type, objects: refMap)
    }

    /// Writes index entry `e`; `p` (the object's address) lets later occurrences refer to it.
    mutating func writeReference(_ e: Int, _ p: UnsafeRawPointer?) {
        if let p { seen.insert(p, w.count + externalBytes) }
        w.u8(CodecFormat.Tag.reference)
        refs!.entries[e].record.withUnsafeBytes { r in
            guard remoteKey != nil else { return w.append(r.baseAddress!, r.count) }
            // The cached record carries the tree's MAC: re-sign its body under the message's key.
            let body = UnsafeRawBufferPointer(rebasing: r[..<(r.count - 8)])
            w.append(body.baseAddress!, body.count)
            w.int(mac(body))
        }
    }

    /// An open io library file handle (`fd` from `luamp_file_descriptor`; -1 when closed) at
    /// logical `position` (-1: not seekable).
    mutating func file(_ fd: Int32, position: Int64) throws(EncodeFailure) {
        guard fd >= 0 else { throw EncodeFailure("cannot send a closed file") }
        guard let name = DescriptorName(fd: fd) else {
            throw EncodeFailure("cannot send this file: \(String(cString: strerror(errno)))")
        }
        var b = name.bytes
        withUnsafeBytes(of: position.littleEndian) { b.append(contentsOf: $0) }
        // The descriptor itself travels by SCM_RIGHTS through the tree's mailbox (as pipe ends
        // do), so a running receiver needs no ptrace rights over the sender; token 0: none posted.
        var token: UInt64 = 0
        if !SendLog.dryRun {
            let t = PipeMailbox.newToken()
            do { try PipeMailbox.post([fd], token: t) } catch {
                throw EncodeFailure("cannot send this file: \(error)")
            }
            token = t
        }
        withUnsafeBytes(of: token.littleEndian) { b.append(contentsOf: $0) }
        w.tagged(CodecFormat.Tag.file, UInt8(b.count))
        b.withUnsafeBytes { w.append($0.baseAddress!, $0.count) }
        w.int(b.withUnsafeBytes { mac($0) })
    }

    /// A userdata whose metatable has `__mp_reduce`: calls it (protected) and writes the
    /// constructor and arguments it returns. False, writing nothing, when there is no `__mp_reduce`.
    mutating func reduced(_ idx: Int32, _ p: UnsafeRawPointer, depth: Int) throws(EncodeFailure) -> Bool {
        let top = lua_gettop(L)
        defer { lua_settop(L, top) }
        guard lua_getmetatable(L, idx) != 0 else { return false }
        _ = lua_pushstring(L, "__mp_reduce")
        guard lua_rawget(L, -2) == LUA_TFUNCTION else { return false }
        try checkDepth(depth)
        guard !reducing.contains(p) else {
            throw EncodeFailure("__mp_reduce returned the userdata itself (directly or inside its arguments)")
        }
        let first = lua_gettop(L)
        lua_pushvalue(L, idx)
        luaRuns += 1
        let status = luamp_pcall(L, 1, LUA_MULTRET, 0)
        if luamp_gc_pause(L) != 0 { pausedGC = true }   // in case the call restarted it
        if status != LUA_OK {
            throw EncodeFailure("__mp_reduce failed: \(LuaStack(L).describe(-1))")
        }
        let n = lua_gettop(L) - first + 1
        guard n >= 1, lua_type(L, first) == LUA_TFUNCTION else {
            throw EncodeFailure("__mp_reduce must return a constructor function and its arguments (it returned \(n >= 1 ? LuaStack(L).typeName(at: first) : "nothing"))")
        }
        guard n <= 256 else { throw EncodeFailure("__mp_reduce returned more than 255 arguments") }
        guard lua_checkstack(L, CodecFormat.stackNeeded) != 0 else { throw EncodeFailure("Lua stack overflow") }
        let tagPos = w.count
        w.tagged(CodecFormat.Tag.reduced, UInt8(n - 1))
        reducing.append(p)
        defer { reducing.removeLast() }
        // The constructor runs on the receiver: it must carry its own proof of origin (a Lua
        // function's MAC or a reference's), never a bare C-function name.
        do throws(EncodeFailure) {
            if lua_iscfunction(L, first) != 0 {
                holdGC()
                let fp = lua_topointer(L, first)
                if let fp, let off = seen.get(fp) {
                    reference(off)
                } else if let e = referenceEntry(first, type: LUA_TFUNCTION, retry: true) {
                    writeReference(e, fp)
                } else {
                    throw EncodeFailure("the constructor is a C function that \(ReferenceIndex.help)")
                }
            } else {
                try function(first, depth: depth + 1)
            }
        } catch {
            var e = error; e.components.append(CodecPath.reduce(0)); throw e
        }
        var i: Int32 = 1
        while i < n {
            do { try value(first + i, depth: depth + 1) } catch {
                var e = error; e.components.append(CodecPath.reduce(Int(i))); throw e
            }
            i += 1
        }
        seen.insert(p, tagPos + externalBytes)
        return true
    }
}
