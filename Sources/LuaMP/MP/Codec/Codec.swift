// Codec: the entry points queues, pipes, pools and mp.dumps/mp.loads use to send Lua values.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// Encodes stack values to luamp's wire format and decodes them back (docs/codec.md).
///
/// Encoding never raises a Lua error: unsendable values throw `MPError("SendError", …)` whose
/// message starts with the value's path (`args[2].conn: cannot send a userdata`) and which has a
/// `path` field. Decoding throws `MPError("DecodeError", …)` for any malformed input and leaves
/// the stack as it found it.
enum Codec {
    /// Encodes the value at `index`. `path` names it in SendError messages ("args", "value").
    /// - Throws: `MPError("SendError", …)`.
    static func encode(_ s: LuaStack, at index: Int32, path: String) throws -> [UInt8] {
        try withEncoded(s, at: index, path: path) { [UInt8]($0) }
    }

    /// Appends the encoding of the value at `index` to `out`.
    /// - Throws: `MPError("SendError", …)`; `out` is unchanged then.
    static func encode(_ s: LuaStack, at index: Int32, path: String, into out: inout [UInt8]) throws {
        try withEncoded(s, at: index, path: path) { try out.appendOrThrow($0) }
    }

    /// Encodes the value at `index` and lends the bytes to `body` without copying them
    /// (valid only inside `body`; the stack is back to how it was when `body` runs).
    /// - Throws: `MPError("SendError", …)` or what `body` throws.
    static func withEncoded<R>(_ s: LuaStack, at index: Int32, path: String,
                               _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let idx = lua_absindex(s.L, index)
        return try run(s, path: path, body) { enc throws(EncodeFailure) in
            enc.w.u8(CodecFormat.kindValue)
            try enc.value(idx, depth: 0)
        }
    }

    /// Encodes `count` consecutive stack values from `first` as one tuple message (nils kept);
    /// value i is named `path[i]` in errors.
    /// - Throws: `MPError("SendError", …)`; `out` is unchanged then.
    static func encodeTuple(_ s: LuaStack, from first: Int32, count: Int32, path: String,
                            into out: inout [UInt8]) throws {
        try withEncodedTuple(s, from: first, count: count, path: path) { try out.appendOrThrow($0) }
    }

    /// `encodeTuple` lending the bytes to `body` without copying them.
    /// - Parameter remoteKey: the cluster key for a message that leaves the tree (`ClusterCodec`).
    static func withEncodedTuple<R>(_ s: LuaStack, from first: Int32, count: Int32, path: String,
                                    remoteKey: (UInt64, UInt64)? = nil,
                                    _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let first = count > 0 ? lua_absindex(s.L, first) : 0
        let n = max(0, count)
        return try run(s, path: path, remoteKey: remoteKey, body) { enc throws(EncodeFailure) in
            enc.w.u8(CodecFormat.kindTuple)
            enc.w.int(UInt32(n))
            var i: Int32 = 0
            while i < n {
                do throws(EncodeFailure) { try enc.value(first + i, depth: 0) } catch {
                    var e = error
                    e.components.append("[\(i + 1)]")
                    throw e
                }
                i += 1
            }
        }
    }

    /// Runs one encoding pass (`fill` writes the message after the version byte), restores the
    /// stack, then hands the bytes to `body`.
    private static func run<R>(_ s: LuaStack, path: String, remoteKey: (UInt64, UInt64)? = nil,
                               _ body: (UnsafeRawBufferPointer) throws -> R,
                               _ fill: (inout Encoder) throws(EncodeFailure) -> Void) throws -> R {
        let L = s.L
        let top = lua_gettop(L)
        guard lua_checkstack(L, CodecFormat.stackNeeded) != 0 else { throw MPError("SendError", "\(path): Lua stack overflow") }
        var enc = Encoder(L)
        enc.remoteKey = remoteKey
        defer { enc.release() }
        enc.w.u8(CodecFormat.version)
        do { try fill(&enc) } catch {
            lua_settop(L, top)
            try enc.checkMemory()
            throw error.sendError(root: path)
        }
        lua_settop(L, top)   // before `body`, which may push results
        try enc.checkMemory()
        return try body(enc.w.bytes)
    }

    /// Decodes one value and pushes it. Stack: [-0, +1] on success, [-0, +0] when it throws.
    /// - Parameter allowCode: false refuses functions, globals, references, rebuilt userdata and
    ///   files (`mp.loads(s, {functions = false})`).
    /// - Throws: `MPError("DecodeError", …)` on malformed, truncated or unverifiable input.
    static func decode(_ s: LuaStack, _ bytes: UnsafeRawBufferPointer, allowCode: Bool = true) throws {
        let L = s.L
        let top = lua_gettop(L)
        guard lua_checkstack(L, CodecFormat.stackNeeded) != 0 else { throw MPError("DecodeError", "Lua stack overflow") }
        try Codec.needReserve()
        lua_pushnil(L)   // the shared-object table's slot
        var dec = Decoder(L, bytes, refs: top + 1)
        dec.allowCode = allowCode
        do {
            try dec.header(kind: CodecFormat.kindValue)
            try dec.value(depth: 0)
            try dec.finish()
        } catch {
            lua_settop(L, top)
            if error.kind == MPError.outOfMemory.kind { throw LuaError.memory("not enough memory") }
            throw error
        }
        luamp_remove(L, top + 1)
    }

    /// Decodes a tuple message, pushing its values. Stack: [-0, +n] on success, [-0, +0] when it throws.
    /// - Parameter refs: a slot the caller pushed (nil) below the values' place for the decoder's
    ///   table of shared parts; it is left there (holding that table or nil), which spares moving
    ///   every decoded value down by one (an O(n) rotation) to remove a slot of the decoder's own.
    /// - Returns: n, the number of values pushed.
    /// - Throws: `MPError("DecodeError", …)`, or `MPError.outOfMemory` (raised as Lua's memory error).
    static func decodeTuple(_ s: LuaStack, _ bytes: UnsafeRawBufferPointer, remoteKey: (UInt64, UInt64)? = nil,
                            refs: Int32? = nil) throws -> Int32 {
        let L = s.L
        let top = lua_gettop(L)
        guard lua_checkstack(L, CodecFormat.stackNeeded) != 0 else { throw MPError("DecodeError", "Lua stack overflow") }
        try Codec.needReserve()
        if refs == nil { lua_pushnil(L) }
        var dec = Decoder(L, bytes, refs: refs.map { lua_absindex(L, $0) } ?? top + 1)
        dec.remoteKey = remoteKey
        var n: Int32 = 0
        do {
            try dec.header(kind: CodecFormat.kindTuple)
            let count = try dec.r.int(UInt32.self)
            guard Int(count) <= dec.r.remaining, count < 1_000_000 else {
                throw dec.r.failure("tuple count \(count) exceeds the input left", at: 2)
            }
            n = Int32(count)
            guard lua_checkstack(L, n + CodecFormat.stackNeeded) != 0 else { throw MPError("DecodeError", "too many values (\(n)) for the Lua stack") }
            for _ in 0..<n { try dec.value(depth: 0) }
            try dec.finish()
        } catch {
            // MPError.outOfMemory stays an MPError here: callers that keep decode failures as
            // MPErrors (the pool's results) then still raise Lua's memory error (`isMemoryError`).
            lua_settop(L, top)
            throw error
        }
        if refs == nil { luamp_remove(L, top + 1) }
        return n
    }
}

extension MPError {
    /// `MPError.outOfMemory` (what the decoder throws) raised from a Swift function, even after
    /// being kept (a pool job's failure), is Lua's own memory error, not an error table.
    var isMemoryError: Bool { kind == MPError.outOfMemory.kind }
}

extension Encoder {
    /// Throws Lua's memory error when the pass ran out of memory (its buffer or its maps could
    /// not grow: see `ByteWriter`); the message is then incomplete and must not be used.
    func checkMemory() throws {
        if w.failed || seen.failed || upvalues.failed { throw LuaError.memory("not enough memory") }
    }
}

extension Array where Element == UInt8 {
    /// `append(contentsOf:)` that throws Lua's memory error where growing the array would
    /// make Swift's allocator abort the process: the bigger block is tried with `malloc` first.
    mutating func appendOrThrow(_ bytes: UnsafeRawBufferPointer) throws {
        let need = count + bytes.count
        if need > capacity {
            let want = Swift.max(need, 2 * capacity)
            guard let probe = malloc(want + 256) else { throw LuaError.memory("not enough memory") }
            free(probe)
            reserveCapacity(want)
        }
        append(contentsOf: bytes)
    }
}

extension Codec {
    /// Decoding allocates from Swift: it needs the memory reserve (memory_shims.c) held.
    /// - Throws: Lua's memory error when even the reserve cannot be allocated.
    static func needReserve() throws { try LuaMemory.needReserve() }
}
