// TableKey: Dict keys as bytes (tag + payload), their hash, and pushing them back to Lua.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua

/// A Dict key is stored as `[tag][payload]`: `s` + the string's bytes, `i` + 8 bytes (integer,
/// little-endian), `f` + 8 bytes (a float that is not an integer), `t` / `b` (true / false).
/// Floats with an integral value are stored as integers, as Lua tables do (`d[1.0]` is `d[1]`).
enum TableKey {
    static let string: UInt8 = 0x73, integer: UInt8 = 0x69, float: UInt8 = 0x66
    static let yes: UInt8 = 0x74, no: UInt8 = 0x62

    /// Calls `body(tag, payload)` for the key at stack slot `i`.
    /// - Throws: `LuaArgumentError(i, …)` for nil, NaN and key types a Dict cannot hold.
    static func with<R>(_ s: LuaStack, _ i: Int32, _ body: (UInt8, UnsafeRawBufferPointer) throws -> R) throws -> R {
        switch lua_type(s.L, i) {
        case LUA_TSTRING:
            return try body(string, s.toBytes(i)!)
        case LUA_TNUMBER:
            if lua_isinteger(s.L, i) != 0 {
                var v = s.toInteger(i)!.littleEndian
                return try withUnsafeBytes(of: &v) { try body(integer, $0) }
            }
            let d = s.toNumber(i)!
            guard !d.isNaN else { throw LuaArgumentError(i, "Dict key is NaN") }
            if d == d.rounded(), d >= -9.2233720368547758e18, d < 9.2233720368547758e18 {
                var v = Int64(d).littleEndian
                return try withUnsafeBytes(of: &v) { try body(integer, $0) }
            }
            var v = d.bitPattern.littleEndian
            return try withUnsafeBytes(of: &v) { try body(float, $0) }
        case LUA_TBOOLEAN:
            return try body(s.toBool(i) ? yes : no, UnsafeRawBufferPointer(start: nil, count: 0))
        case LUA_TNIL, LUA_TNONE:
            throw LuaArgumentError(i, "Dict key is nil")
        default:
            throw LuaArgumentError(i, "Dict key must be a string, number or boolean, got \(s.typeName(at: i))")
        }
    }

    /// Pushes the key stored as `bytes` (tag first). Stack: [-0, +1].
    static func push(_ s: LuaStack, _ bytes: UnsafeRawBufferPointer) {
        let payload = UnsafeRawBufferPointer(rebasing: bytes[1...])
        switch bytes[0] {
        case string: s.push(bytes: payload)
        case integer: s.push(Int64(littleEndian: payload.loadUnaligned(as: Int64.self)))
        case float: s.push(Double(bitPattern: UInt64(littleEndian: payload.loadUnaligned(as: UInt64.self))))
        case yes: s.push(true)
        default: s.push(false)
        }
    }

    /// A 64-bit hash of (tag, payload): multiply-xorshift over 8-byte words, murmur3's finalizer.
    static func hash(_ tag: UInt8, _ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(tag) << 56) ^ UInt64(p.count)
        let n = p.count
        var i = 0
        while i + 8 <= n {
            h = (h ^ UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))) &* 0xff51_afd7_ed55_8ccd
            h ^= h >> 29
            i += 8
        }
        if i < n {
            var m: UInt64 = 0
            var sh: UInt64 = 0
            while i < n { m |= UInt64(p[i]) << sh; sh += 8; i += 1 }
            h = (h ^ m) &* 0xc4ce_b9fe_1a85_ec53
        }
        h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd
        h ^= h >> 33; h = h &* 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }
}

/// Encoded values as they are stored in the arena (codec bytes), and the integer shortcut `incr` uses.
enum StoredValue {
    /// The codec encoding of integer `v` (`[version][value][int64][8 bytes]`), the same bytes
    /// a decoder accepts from `Codec.withEncoded`.
    static func integerBytes(_ v: Int64) -> (UInt64, UInt64) {
        var w: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &w) { p in
            p[0] = CodecFormat.version
            p[1] = CodecFormat.kindValue
            p[2] = CodecFormat.Tag.int64
            p.storeBytes(of: v.littleEndian, toByteOffset: 3, as: Int64.self)
        }
        return w
    }
    static let integerByteCount = 11

    /// The integer in codec bytes `b` if they encode exactly one integer, else nil.
    static func integer(_ b: UnsafeRawBufferPointer) -> Int64? {
        guard b.count >= 4, b[0] == CodecFormat.version, b[1] == CodecFormat.kindValue else { return nil }
        switch b[2] {
        case CodecFormat.Tag.int8 where b.count == 4: return Int64(Int8(bitPattern: b[3]))
        case CodecFormat.Tag.int32 where b.count == 7: return Int64(Int32(littleEndian: b.loadUnaligned(fromByteOffset: 3, as: Int32.self)))
        case CodecFormat.Tag.int64 where b.count == 11: return Int64(littleEndian: b.loadUnaligned(fromByteOffset: 3, as: Int64.self))
        default: return nil
        }
    }

    /// What the codec bytes `b` hold, for error messages ("a string").
    static func describeType(_ b: UnsafeRawBufferPointer) -> String {
        guard b.count >= 3 else { return "a malformed value" }
        switch b[2] {
        case CodecFormat.Tag.nil: return "nil"
        case CodecFormat.Tag.false, CodecFormat.Tag.true: return "a boolean"
        case CodecFormat.Tag.float: return "a float"
        case CodecFormat.Tag.str8, CodecFormat.Tag.str32, CodecFormat.Tag.str64: return "a string"
        case CodecFormat.Tag.table, CodecFormat.Tag.sharedTable: return "a table"
        case CodecFormat.Tag.function, CodecFormat.Tag.sharedFunction, CodecFormat.Tag.cfunction: return "a function"
        case CodecFormat.Tag.handle: return "an mp object"
        default: return "a value"
        }
    }
}
