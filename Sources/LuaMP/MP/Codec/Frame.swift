// Frame: the one frame of every byte stream between luamp processes (pipes, the fork server; pool channels may adopt it): header (magic, checksum, length), its length cap, and the one checksum.

/// A frame is a 16-byte header followed by the payload (the codec's bytes on a pipe):
/// `UInt32 magic "LMPF"`, `UInt32 checksum of the payload`, `UInt64 payload length` (little-endian).
/// The reader checks the magic, caps the length and verifies the checksum before decoding, so
/// bytes interleaved by two writers, or anything else that is not a luamp frame, are refused
/// instead of reaching a decoder. Payload fields are read with `ByteReader`.
enum Frame {
    static let headerBytes = 16
    static let magic: UInt32 = 0x4650_4d4c   // "LMPF"
    /// The largest payload a reader accepts (real messages are far smaller in practice).
    static let maxPayload: UInt64 = 1 << 40

    /// Writes the header for a payload made of `parts` (sent back to back) into `out` (16 bytes).
    static func header(for parts: UnsafeRawBufferPointer..., into out: UnsafeMutableRawPointer) {
        var c = Checksum()
        var n = 0
        for p in parts { c.update(p); n += p.count }
        out.storeBytes(of: magic.littleEndian, as: UInt32.self)
        out.storeBytes(of: c.finish(length: n).littleEndian, toByteOffset: 4, as: UInt32.self)
        out.storeBytes(of: UInt64(n).littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// Reads a header: the payload length and expected checksum.
    /// - Parameter stream: what carries the frame, for the message ("on this pipe").
    /// - Throws: `MPError("DecodeError")` for a wrong magic or an absurd length.
    static func parse(_ h: UnsafeRawPointer, stream: String) throws -> (length: Int, checksum: UInt32) {
        let m = UInt32(littleEndian: h.loadUnaligned(as: UInt32.self))
        guard m == magic else { throw MPError("DecodeError", "not a luamp frame \(stream) (bad magic 0x\(String(m, radix: 16)); two writers on one end?)") }
        let sum = UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let n = UInt64(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard n <= maxPayload else { throw MPError("DecodeError", "frame length \(n) is too large") }
        return (Int(n), sum)
    }

    /// The checksum of one contiguous payload.
    static func checksum(_ b: UnsafeRawBufferPointer) -> UInt32 {
        var c = Checksum()
        c.update(b)
        return c.finish(length: b.count)
    }
}

/// A fast 32-bit checksum (multiply-xor over 8-byte words in two lanes; ~8 GB/s), meant to catch
/// torn or interleaved frames, not attacks. Streaming: a payload sent in parts gets the same
/// checksum as the joined bytes.
struct Checksum {
    private var h0: UInt64 = 0x9e37_79b9_7f4a_7c15
    private var h1: UInt64 = 0xc2b2_ae3d_27d4_eb4f
    private var pending: (UInt64, UInt64) = (0, 0)
    private var pendingCount = 0
    private static let k: UInt64 = 0xff51_afd7_ed55_8ccd

    @inline(__always)
    private mutating func block(_ a: UInt64, _ c: UInt64) {
        h0 = (h0 ^ a) &* Checksum.k
        h1 = (h1 ^ c) &* Checksum.k
        h0 ^= h0 >> 29
        h1 ^= h1 >> 29
    }

    mutating func update(_ b: UnsafeRawBufferPointer) {
        guard let p = b.baseAddress, b.count > 0 else { return }
        let n = b.count
        var i = 0
        if pendingCount > 0 {                       // complete the partial 16-byte block
            withUnsafeMutableBytes(of: &pending) { q in
                while pendingCount < 16 && i < n { q[pendingCount] = p.load(fromByteOffset: i, as: UInt8.self); pendingCount += 1; i += 1 }
            }
            if pendingCount < 16 { return }
            block(pending.0, pending.1)
            pendingCount = 0
        }
        while i + 16 <= n {
            block(p.loadUnaligned(fromByteOffset: i, as: UInt64.self), p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            i += 16
        }
        if i < n {
            pending = (0, 0)
            withUnsafeMutableBytes(of: &pending) { q in
                while i < n { q[pendingCount] = p.load(fromByteOffset: i, as: UInt8.self); pendingCount += 1; i += 1 }
            }
        }
    }

    func finish(length: Int) -> UInt32 {
        var a = h0 ^ UInt64(length)
        if pendingCount > 0 {
            var tail = pending
            withUnsafeMutableBytes(of: &tail) { q in for j in pendingCount..<16 { q[j] = 0 } }
            a = (a ^ tail.0) &* Checksum.k
            a = (a ^ tail.1 ^ UInt64(pendingCount)) &* Checksum.k
        }
        var h = a ^ (h1 &* 0x9e37_79b9_7f4a_7c15)
        h ^= h >> 32
        return UInt32(truncatingIfNeeded: h)
    }
}
