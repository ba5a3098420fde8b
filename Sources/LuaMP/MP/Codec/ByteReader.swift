// ByteReader: bounds-checked reads over an encoded message; every failure is a DecodeError.

/// A cursor over untrusted bytes. Every read checks the remaining length first and never trusts
/// a length field beyond what is left.
struct ByteReader {
    let base: UnsafeRawPointer
    let count: Int
    private(set) var pos = 0

    /// Reads `bytes` from offset `from` on (a frame's fields after its kind byte, say).
    init(_ bytes: UnsafeRawBufferPointer, from: Int = 0) {
        // An empty buffer may have no base address; any non-null pointer works with count 0.
        base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        count = bytes.count
        pos = min(max(0, from), count)
    }

    var remaining: Int { count - pos }
    var atEnd: Bool { pos == count }

    /// A DecodeError naming the offset it happened at.
    func failure(_ what: String, at offset: Int? = nil) -> MPError {
        MPError("DecodeError", "malformed message: \(what) at byte \(offset ?? pos)")
    }

    /// The next byte without reading it; nil at the end.
    @inline(__always)
    func peek() -> UInt8? { pos < count ? base.load(fromByteOffset: pos, as: UInt8.self) : nil }

    @inline(__always)
    mutating func u8() throws(MPError) -> UInt8 {
        guard pos < count else { throw failure("truncated input") }
        let v = base.load(fromByteOffset: pos, as: UInt8.self)
        pos &+= 1
        return v
    }

    @inline(__always)
    mutating func int<T: FixedWidthInteger>(_: T.Type) throws(MPError) -> T {
        guard count - pos >= MemoryLayout<T>.size else { throw failure("truncated input") }
        let v = T(littleEndian: base.loadUnaligned(fromByteOffset: pos, as: T.self))
        pos &+= MemoryLayout<T>.size
        return v
    }

    /// `n` bytes in place (valid as long as the input is). `n` comes from the input: checked.
    @inline(__always)
    mutating func bytes<T: BinaryInteger>(_ n: T) throws(MPError) -> UnsafeRawBufferPointer {
        guard n >= 0, UInt64(n) <= UInt64(count - pos) else {
            throw failure("length \(n) exceeds the \(count - pos) bytes left")
        }
        let p = UnsafeRawBufferPointer(start: base + pos, count: Int(n))
        pos &+= Int(n)
        return p
    }

    /// A u32-length-prefixed byte string, in place.
    mutating func lengthPrefixed() throws(MPError) -> UnsafeRawBufferPointer {
        try bytes(try int(UInt32.self))
    }

    /// A u32-length-prefixed UTF-8 string.
    mutating func lengthPrefixedString() throws(MPError) -> String {
        String(decoding: try lengthPrefixed(), as: UTF8.self)
    }

    /// The bytes after what was read so far, in place.
    var rest: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + pos, count: count - pos) }
}
