// EncodedString: sends a big Lua string without building the codec's copy of it first.
internal import CLua

/// A message that is one big string is encoded by the codec as a short prefix
/// (`[version][kindValue][str32|str64][length]`) followed by the string's bytes. Queues and pipes
/// write the prefix and then copy the bytes straight from the Lua string into shared memory or
/// the pipe, which saves one full copy of a 1 MiB (or 256 MiB) message. The result is byte for
/// byte what `Codec.withEncoded` produces (checked by `EncodedStringTests`), so receivers simply
/// decode it with the codec.
enum EncodedString {
    /// Strings at least this long take the fast path.
    static let threshold = 8193

    /// If the value at `index` is a string of at least `threshold` bytes, calls `body` with the
    /// prefix and the string's bytes (valid only inside `body`) and returns true. Stack: [-0, +0].
    static func withParts(_ s: LuaStack, at index: Int32,
                          _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows -> Bool {
        guard lua_type(s.L, index) == LUA_TSTRING, let bytes = s.toBytes(index), bytes.count >= threshold else { return false }
        var prefix: (UInt64, UInt64) = (0, 0)
        let n = withUnsafeMutableBytes(of: &prefix) { p -> Int in
            p[0] = CodecFormat.version
            p[1] = CodecFormat.kindValue
            if bytes.count <= Int(UInt32.max) {
                p[2] = CodecFormat.Tag.str32
                p.storeBytes(of: UInt32(bytes.count).littleEndian, toByteOffset: 3, as: UInt32.self)
                return 7
            }
            p[2] = CodecFormat.Tag.str64
            p.storeBytes(of: UInt64(bytes.count).littleEndian, toByteOffset: 3, as: UInt64.self)
            return 11
        }
        try withUnsafeBytes(of: &prefix) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n]), bytes) }
        return true
    }
}
