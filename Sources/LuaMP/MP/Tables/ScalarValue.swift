// ScalarValue: the codec bytes of nil, booleans, numbers and short strings without the codec's machinery.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua

/// Dict and List store every value as codec bytes (`[version][value][tag][payload]`). For the
/// common scalar values this file writes and reads those same bytes directly, which saves most of
/// an encode/decode call's fixed cost; anything else goes through `Codec`. The bytes are exactly
/// what `Codec.withEncoded` would produce (or, for integers, a form its decoder accepts: `int64`).
enum ScalarValue {
    /// Bytes a stack buffer for one scalar needs (a 255-byte string and its header).
    static let maxBytes = 4 + 255

    /// If the value at `i` is nil, a boolean, a number or a string of at most 255 bytes, calls
    /// `body` with its codec bytes and returns its result; otherwise returns nil.
    static func withBytes<R>(_ s: LuaStack, _ i: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        let t = lua_type(s.L, i)
        guard t == LUA_TNIL || t == LUA_TBOOLEAN || t == LUA_TNUMBER || t == LUA_TSTRING else { return nil }
        var str: UnsafeRawBufferPointer? = nil
        if t == LUA_TSTRING {
            str = s.toBytes(i)
            guard str!.count <= 255 else { return nil }
        }
        return try withUnsafeTemporaryAllocation(byteCount: maxBytes, alignment: 8) { buf -> R in
            let p = buf.baseAddress!
            p.storeBytes(of: CodecFormat.version, as: UInt8.self)
            p.storeBytes(of: CodecFormat.kindValue, toByteOffset: 1, as: UInt8.self)
            var n = 3
            switch t {
            case LUA_TNIL:
                p.storeBytes(of: CodecFormat.Tag.nil, toByteOffset: 2, as: UInt8.self)
            case LUA_TBOOLEAN:
                p.storeBytes(of: s.toBool(i) ? CodecFormat.Tag.true : CodecFormat.Tag.false, toByteOffset: 2, as: UInt8.self)
            case LUA_TNUMBER:
                if lua_isinteger(s.L, i) != 0 {
                    p.storeBytes(of: CodecFormat.Tag.int64, toByteOffset: 2, as: UInt8.self)
                    p.storeBytes(of: s.toInteger(i)!.littleEndian, toByteOffset: 3, as: Int64.self)
                } else {
                    p.storeBytes(of: CodecFormat.Tag.float, toByteOffset: 2, as: UInt8.self)
                    p.storeBytes(of: s.toNumber(i)!.bitPattern.littleEndian, toByteOffset: 3, as: UInt64.self)
                }
                n = 11
            default:
                let b = str!
                p.storeBytes(of: CodecFormat.Tag.str8, toByteOffset: 2, as: UInt8.self)
                p.storeBytes(of: UInt8(b.count), toByteOffset: 3, as: UInt8.self)
                if b.count > 0 { memcpy(p + 4, b.baseAddress!, b.count) }
                n = 4 + b.count
            }
            return try body(UnsafeRawBufferPointer(start: p, count: n))
        }
    }

    /// Pushes the value if `b` encodes one scalar (as above, or the codec's int8/int32/str32
    /// forms) and returns true; returns false (pushing nothing) for anything else. Stack: [-0, +0|1].
    static func push(_ s: LuaStack, _ b: UnsafeRawBufferPointer) -> Bool {
        guard b.count >= 3, b[0] == CodecFormat.version, b[1] == CodecFormat.kindValue else { return false }
        switch b[2] {
        case CodecFormat.Tag.nil where b.count == 3: s.pushNil()
        case CodecFormat.Tag.true where b.count == 3: s.push(true)
        case CodecFormat.Tag.false where b.count == 3: s.push(false)
        case CodecFormat.Tag.float where b.count == 11:
            s.push(Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 3, as: UInt64.self))))
        case CodecFormat.Tag.str8 where b.count >= 4 && b.count == 4 + Int(b[3]):
            s.push(bytes: UnsafeRawBufferPointer(rebasing: b[4...]))
        default:
            guard let v = StoredValue.integer(b) else { return false }
            s.push(v)
        }
        return true
    }
}

/// What a read copies out of a Dict/List entry under its mutex: small values into a stack buffer,
/// larger ones into an array. Decoding happens after the mutex is released.
struct ValueCopy {
    /// Runs `fill` (which calls `copy` at most once, with the mutex held), then pushes the copied
    /// value. Returns false when `fill` copied nothing. Stack: [-0, +1] or [-0, +0].
    static func push(_ s: LuaStack, _ fill: ((UnsafeRawBufferPointer) -> Void) -> Void) throws -> Bool {
        try withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { tmp -> Bool in
            var n = -1
            var big: [UInt8]? = nil
            fill { v in
                if v.count <= 256 {
                    if v.count > 0 { memcpy(tmp.baseAddress!, v.baseAddress!, v.count) }
                    n = v.count
                } else {
                    big = [UInt8](v)
                }
            }
            if let b = big {
                try b.withUnsafeBytes { try Codec.decode(s, $0) }
                return true
            }
            guard n >= 0 else { return false }
            let bytes = UnsafeRawBufferPointer(start: tmp.baseAddress, count: n)
            if !ScalarValue.push(s, bytes) { try Codec.decode(s, bytes) }
            return true
        }
    }
}
