// Frame: the one frame of every byte stream between luamp processes (pipes, pool channels, the fork server): header (magic, checksum, length), its length cap, and the one checksum.
#if canImport(Glibc)
import Glibc
#endif

/// A frame is a 16-byte header followed by the payload (the codec's bytes on a pipe, a kind
/// byte and its fields on a pool channel, a request or reply on a fork-server connection):
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
        write(into: out, length: n, checksum: c.finish(length: n))
    }

    /// Writes the header of a frame built in place: the `payloadLength` bytes after the 16
    /// header bytes at `frame` are the payload.
    @inline(__always)
    static func seal(_ frame: UnsafeMutableRawPointer, payloadLength n: Int) {
        let sum = Checksum.of(UnsafeRawBufferPointer(start: frame + headerBytes, count: n))
        write(into: frame, length: n, checksum: sum)
    }

    /// Writes a header (magic, `checksum`, `length`) into the 16 bytes at `out`.
    @inline(__always)
    static func write(into out: UnsafeMutableRawPointer, length: Int, checksum: UInt32) {
        out.storeBytes(of: magic.littleEndian, as: UInt32.self)
        out.storeBytes(of: checksum.littleEndian, toByteOffset: 4, as: UInt32.self)
        out.storeBytes(of: UInt64(length).littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// Reads a header: the payload length and expected checksum.
    /// - Parameter stream: what carries the frame, for the message ("on this pipe").
    /// - Throws: `MPError("DecodeError")` for a wrong magic or an absurd length.
    @inline(__always)
    static func parse(_ h: UnsafeRawPointer, stream: @autoclosure () -> String) throws(MPError) -> (length: Int, checksum: UInt32) {
        let m = UInt32(littleEndian: h.loadUnaligned(as: UInt32.self))
        guard m == magic else { throw MPError("DecodeError", "not a luamp frame \(stream()) (bad magic 0x\(String(m, radix: 16)); two writers on one end?)") }
        let sum = UInt32(littleEndian: h.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let n = UInt64(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard n <= maxPayload else { throw MPError("DecodeError", "frame length \(n) is too large") }
        return (Int(n), sum)
    }

    /// The payload length a header announces, or nil when it is no frame header (bad magic,
    /// length over the cap): a reader's look-ahead, before `parse` says why.
    @inline(__always)
    static func announcedLength(_ h: UnsafeRawPointer) -> Int? {
        guard UInt32(littleEndian: h.loadUnaligned(as: UInt32.self)) == magic else { return nil }
        let n = UInt64(littleEndian: h.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        return n <= maxPayload ? Int(n) : nil
    }

    /// The checksum of one contiguous payload.
    @inline(__always)
    static func checksum(_ b: UnsafeRawBufferPointer) -> UInt32 { Checksum.of(b) }
}

/// The one 32-bit checksum of luamp frames: multiply-xorshift over four independent 8-byte
/// lanes (32-byte blocks, so the multiplications overlap; speed in docs/pools.md), then the tail in 8-byte
/// words. It catches torn or interleaved frames, not attacks (function chunks carry the codec's
/// own MAC). Streaming: a payload fed to `update` in parts gets the same checksum as `of` gives
/// the joined bytes.
struct Checksum {
    private typealias Lanes = (UInt64, UInt64, UInt64, UInt64)
    private static let seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    private static let k0: UInt64 = 0xFF51_AFD7_ED55_8CCD
    private static let k1: UInt64 = 0xC4CE_B9FE_1A85_EC53
    private static let initial: Lanes = (seed, seed &* k0, seed &* k1, ~seed)

    private var lanes = Checksum.initial
    /// The bytes of a block not yet complete (zero past `pendingCount`).
    private var pending: Lanes = (0, 0, 0, 0)
    private var pendingCount = 0

    /// Mixes every whole 32-byte block of `p[0..<n]` into `s`; returns the bytes consumed.
    @inline(__always)
    private static func blocks(_ p: UnsafeRawPointer, _ n: Int, _ s: inout Lanes) -> Int {
        var (a, b, c, d) = s
        let end = n & ~31
        var q = p
        let stop = p + end
        while q < stop {
            a = (a ^ UInt64(littleEndian: q.loadUnaligned(as: UInt64.self))) &* k0
            b = (b ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 8, as: UInt64.self))) &* k1
            c = (c ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 16, as: UInt64.self))) &* k0
            d = (d ^ UInt64(littleEndian: q.loadUnaligned(fromByteOffset: 24, as: UInt64.self))) &* k1
            a ^= a >> 29; b ^= b >> 31; c ^= c >> 27; d ^= d >> 33
            q += 32
        }
        s = (a, b, c, d)
        return end
    }

    /// Folds the lanes, the `n` < 32 tail bytes at `p` (in zero-padded 8-byte words) and the
    /// total length into the checksum.
    @inline(__always)
    private static func final(_ s: Lanes, _ p: UnsafeRawPointer?, _ n: Int, length: Int) -> UInt32 {
        var h = s.0 ^ (s.1 &* 31) ^ (s.2 &* 127) ^ (s.3 &* 8191) ^ UInt64(length)
        if var q = p {
            let words = q + (n & ~7)
            while q < words {
                h = (h ^ UInt64(littleEndian: q.loadUnaligned(as: UInt64.self))) &* k1
                h ^= h >> 29
                q += 8
            }
            let rest = n & 7
            if rest > 0 {                           // the last word, zero-padded (little-endian)
                var w: UInt64 = 0, shift: UInt64 = 0
                if rest & 4 != 0 { w = UInt64(UInt32(littleEndian: q.loadUnaligned(as: UInt32.self))); q += 4; shift = 32 }
                if rest & 2 != 0 { w |= UInt64(UInt16(littleEndian: q.loadUnaligned(as: UInt16.self))) << shift; q += 2; shift += 16 }
                if rest & 1 != 0 { w |= UInt64(q.load(as: UInt8.self)) << shift }
                h = (h ^ w) &* k1
                h ^= h >> 29
            }
        }
        h = (h ^ (h >> 33)) &* k0
        h ^= h >> 32
        return UInt32(truncatingIfNeeded: h)
    }

    /// The checksum of one contiguous buffer (what `update` over its parts then `finish` gives).
    @inline(__always)
    static func of(_ b: UnsafeRawBufferPointer) -> UInt32 {
        guard let p = b.baseAddress else { return final(initial, nil, 0, length: 0) }
        var s = initial
        let i = blocks(p, b.count, &s)
        return final(s, p + i, b.count - i, length: b.count)
    }

    /// Adds the next part of the payload.
    mutating func update(_ b: UnsafeRawBufferPointer) {
        guard let p = b.baseAddress, b.count > 0 else { return }
        let n = b.count
        var i = 0
        if pendingCount > 0 {                       // complete the partial 32-byte block
            let take = min(32 - pendingCount, n)
            let at = pendingCount
            withUnsafeMutableBytes(of: &pending) { q in _ = memcpy(q.baseAddress! + at, p, take) }
            pendingCount += take
            i = take
            if pendingCount < 32 { return }
            withUnsafeBytes(of: pending) { q in _ = Checksum.blocks(q.baseAddress!, 32, &lanes) }
            pending = (0, 0, 0, 0)
            pendingCount = 0
        }
        i += Checksum.blocks(p + i, n - i, &lanes)
        if i < n {
            withUnsafeMutableBytes(of: &pending) { q in _ = memcpy(q.baseAddress!, p + i, n - i) }
            pendingCount = n - i
        }
    }

    /// The checksum of everything passed to `update`; `length` is its total byte count.
    func finish(length: Int) -> UInt32 {
        withUnsafeBytes(of: pending) { Checksum.final(lanes, $0.baseAddress!, pendingCount, length: length) }
    }
}
