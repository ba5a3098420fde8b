// CodecValues: plain LuaValues (nil, booleans, numbers, strings, tables of them) in the codec's format, written and read with no Lua state.

/// Encodes and decodes `LuaValue`s in the codec's wire format (`CodecFormat`: the same
/// version byte, message kinds and value tags `Codec` writes from a Lua stack), for a peer that
/// has no Lua state: the app's side of a fork-server connection. Only what a `LuaValue` holds
/// by value crosses (nil, booleans, integers, floats, strings, tables of them); functions and
/// userdata live in one Lua state and are refused. Tables are never shared or cyclic here, so
/// neither side writes or accepts references, metatables, functions or mp objects.
///
/// A message from `encode` decodes with `Codec.decode`/`Codec.decodeTuple` into a Lua state,
/// and a message `Codec` encoded from such values decodes with `decode` here.
enum CodecValues {
    /// Why a value cannot be encoded.
    enum Refusal: Error {
        /// A function, userdata or thread (it lives in one Lua state): its type name.
        case unsendable(String)
        /// Tables nested deeper than `CodecFormat.maxDepth`.
        case tooDeep
    }

    /// Appends a tuple message (`kindTuple`: count, then each value) of `values` to `out`.
    /// - Throws: `Refusal`; `out` may then hold part of the message.
    static func encodeTuple(_ values: [LuaValue], into out: inout [UInt8]) throws(Refusal) {
        out.append(CodecFormat.version)
        out.append(CodecFormat.kindTuple)
        out.appendLE(UInt32(values.count))
        for v in values { try value(v, depth: 0, into: &out) }
    }

    /// Appends a single-value message (`kindValue`) of `v` to `out`.
    /// - Throws: `Refusal`; `out` may then hold part of the message.
    static func encode(_ v: LuaValue, into out: inout [UInt8]) throws(Refusal) {
        out.append(CodecFormat.version)
        out.append(CodecFormat.kindValue)
        try value(v, depth: 0, into: &out)
    }

    /// Reads a tuple message from `r` (which is left after it).
    /// - Throws: `MPError("DecodeError", …)` for anything malformed or not a plain value.
    static func decodeTuple(_ r: inout ByteReader) throws(MPError) -> [LuaValue] {
        try header(&r, kind: CodecFormat.kindTuple)
        let n = Int(try r.int(UInt32.self))
        guard n <= r.remaining else { throw r.failure("tuple count \(n) exceeds the input left") }
        var out: [LuaValue] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try value(&r, depth: 0)) }
        return out
    }

    /// Reads a single-value message from `r` (which is left after it).
    /// - Throws: `MPError("DecodeError", …)` for anything malformed or not a plain value.
    static func decode(_ r: inout ByteReader) throws(MPError) -> LuaValue {
        try header(&r, kind: CodecFormat.kindValue)
        return try value(&r, depth: 0)
    }

    // MARK: writing

    private static func value(_ v: LuaValue, depth: Int, into out: inout [UInt8]) throws(Refusal) {
        switch v {
        case .nil: out.append(CodecFormat.Tag.nil)
        case .boolean(let b): out.append(b ? CodecFormat.Tag.true : CodecFormat.Tag.false)
        case .integer(let i):
            if i >= -128 && i <= 127 {
                out.append(CodecFormat.Tag.int8); out.append(UInt8(bitPattern: Int8(truncatingIfNeeded: i)))
            } else if i >= Int64(Int32.min) && i <= Int64(Int32.max) {
                out.append(CodecFormat.Tag.int32); out.appendLE(Int32(truncatingIfNeeded: i))
            } else {
                out.append(CodecFormat.Tag.int64); out.appendLE(i)
            }
        case .number(let d): out.append(CodecFormat.Tag.float); out.appendLE(d.bitPattern)
        case .string(let s): string(s.utf8, into: &out)
        case .bytes(let b): string(b, into: &out)
        case .table(let t):
            guard depth < CodecFormat.maxDepth else { throw .tooDeep }
            // Keys 1…n go in the array part, every other key in the pairs.
            var n: Int64 = 0
            while t.entries[.integer(n + 1)] != nil { n += 1 }
            out.append(CodecFormat.Tag.table)
            out.appendLE(UInt32(n))
            out.appendLE(UInt32(t.count - Int(n)))
            var i: Int64 = 1
            while i <= n { try value(t.entries[.integer(i)]!, depth: depth + 1, into: &out); i += 1 }
            for (k, x) in t.entries {
                if case .integer(let j) = k, j >= 1 && j <= n { continue }
                try value(k, depth: depth + 1, into: &out)
                try value(x, depth: depth + 1, into: &out)
            }
        case .function, .opaque:
            throw .unsendable(v.typeName)
        }
    }

    private static func string(_ b: some Collection<UInt8>, into out: inout [UInt8]) {
        let n = b.count
        if n < 256 {
            out.append(CodecFormat.Tag.str8); out.append(UInt8(n))
        } else if n <= Int(UInt32.max) {
            out.append(CodecFormat.Tag.str32); out.appendLE(UInt32(n))
        } else {
            out.append(CodecFormat.Tag.str64); out.appendLE(UInt64(n))
        }
        out.append(contentsOf: b)
    }

    // MARK: reading

    private static func header(_ r: inout ByteReader, kind: UInt8) throws(MPError) {
        let v = try r.u8()
        guard v >= CodecFormat.oldestReadable && v <= CodecFormat.version else {
            throw MPError("DecodeError", "unsupported message format version \(v) (this luamp reads version \(CodecFormat.version))")
        }
        let k = try r.u8()
        guard k == kind else { throw r.failure("unexpected message kind \(k)", at: r.pos - 1) }
    }

    /// A string: `.string` when the bytes are UTF-8, `.bytes` otherwise (as `LuaStack.value`).
    private static func string(_ b: UnsafeRawBufferPointer) -> LuaValue {
        if let s = String(validating: b, as: UTF8.self) { return .string(s) }
        return .bytes(Array(b))
    }

    private static func value(_ r: inout ByteReader, depth: Int) throws(MPError) -> LuaValue {
        let at = r.pos
        switch try r.u8() {
        case CodecFormat.Tag.nil: return .nil
        case CodecFormat.Tag.false: return .boolean(false)
        case CodecFormat.Tag.true: return .boolean(true)
        case CodecFormat.Tag.int8: return .integer(Int64(try r.int(Int8.self)))
        case CodecFormat.Tag.int32: return .integer(Int64(try r.int(Int32.self)))
        case CodecFormat.Tag.int64: return .integer(try r.int(Int64.self))
        case CodecFormat.Tag.float: return .number(Double(bitPattern: try r.int(UInt64.self)))
        case CodecFormat.Tag.str8: return string(try r.bytes(try r.u8()))
        case CodecFormat.Tag.str32: return string(try r.bytes(try r.int(UInt32.self)))
        case CodecFormat.Tag.str64: return string(try r.bytes(try r.int(UInt64.self)))
        case CodecFormat.Tag.table:
            let narr = Int(try r.int(UInt32.self))
            let npairs = Int(try r.int(UInt32.self))
            guard narr <= r.remaining, npairs <= r.remaining / 2 else {
                throw r.failure("table counts \(narr)/\(npairs) exceed the input left", at: at)
            }
            guard depth < CodecFormat.maxDepth else { throw r.failure("nesting deeper than \(CodecFormat.maxDepth) levels", at: at) }
            var t = LuaTable(minimumCapacity: narr + npairs)
            for i in 0..<narr { t[Int(i) + 1] = try value(&r, depth: depth + 1) }
            for _ in 0..<npairs {
                let kAt = r.pos
                let k = try value(&r, depth: depth + 1)
                switch k {
                case .nil: throw r.failure("nil table key", at: kAt)
                case .number(let d) where d.isNaN: throw r.failure("NaN table key", at: kAt)
                default: break
                }
                t[k] = try value(&r, depth: depth + 1)
            }
            return .table(t)
        case let tag:
            throw r.failure("value tag 0x\(String(tag, radix: 16)) is not a plain value (nil, boolean, number, string or table)", at: at)
        }
    }
}
