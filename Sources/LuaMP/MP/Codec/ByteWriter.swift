// ByteWriter: the encoder's growing output buffer (malloc'd, written through raw pointers).

#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer the encoder appends to without per-value allocations.
/// A value type with manual memory: the owner calls `release()` exactly once.
struct ByteWriter {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        base = malloc(self.capacity)!
    }

    /// Frees the storage.
    func release() { free(base) }

    /// The bytes written so far (valid until the next write or `release`).
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Makes room for `n` more bytes (doubling; `realloc` moves big buffers with mremap).
    @inline(__always)
    mutating func reserve(_ n: Int) {
        if count &+ n > capacity { grow(n) }
    }

    @inline(never)
    private mutating func grow(_ n: Int) {
        var c = capacity
        while c < count + n { c = c < (1 << 30) ? c * 2 : c + (1 << 30) }
        guard let p = realloc(base, c) else { fatalError("luamp codec: out of memory (\(c) bytes)") }
        base = p
        capacity = c
    }

    @inline(__always)
    mutating func u8(_ v: UInt8) {
        reserve(1)
        base.storeBytes(of: v, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// A tag byte followed by a fixed-size little-endian value.
    @inline(__always)
    mutating func tagged<T: FixedWidthInteger>(_ tag: UInt8, _ v: T) {
        reserve(1 + MemoryLayout<T>.size)
        base.storeBytes(of: tag, toByteOffset: count, as: UInt8.self)
        (base + count + 1).storeBytes(of: v.littleEndian, as: T.self)
        count &+= 1 + MemoryLayout<T>.size
    }

    @inline(__always)
    mutating func int<T: FixedWidthInteger>(_ v: T) {
        reserve(MemoryLayout<T>.size)
        (base + count).storeBytes(of: v.littleEndian, as: T.self)
        count &+= MemoryLayout<T>.size
    }

    /// Overwrites a previously written integer at `offset`.
    mutating func patch<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        (base + offset).storeBytes(of: v.littleEndian, as: T.self)
    }

    /// Overwrites one byte at `offset`.
    mutating func patchByte(_ v: UInt8, at offset: Int) {
        base.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
    }

    /// `tag`, a one-byte length and `n` (< 256) bytes from `p`, with a single capacity check.
    @inline(__always)
    mutating func shortString(_ tag: UInt8, _ p: UnsafeRawPointer, _ n: Int) {
        reserve(2 + n)
        let d = base + count
        d.storeBytes(of: tag, as: UInt8.self)
        d.storeBytes(of: UInt8(truncatingIfNeeded: n), toByteOffset: 1, as: UInt8.self)
        copySmall(d + 2, p, n)
        count &+= 2 + n
    }

    /// memcpy for short strings without the call: overlapping 8- or 4-byte moves (never reading
    /// outside `p[0..<n]`), memcpy beyond 16 bytes.
    @inline(__always)
    private func copySmall(_ d: UnsafeMutableRawPointer, _ p: UnsafeRawPointer, _ n: Int) {
        if n >= 8 && n <= 16 {
            d.storeBytes(of: p.loadUnaligned(as: UInt64.self), as: UInt64.self)
            (d + n - 8).storeBytes(of: p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), as: UInt64.self)
        } else if n >= 4 && n < 8 {
            d.storeBytes(of: p.loadUnaligned(as: UInt32.self), as: UInt32.self)
            (d + n - 4).storeBytes(of: p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self), as: UInt32.self)
        } else if n < 4 {
            var i = 0
            while i < n { d.storeBytes(of: p.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self); i += 1 }
        } else {
            memcpy(d, p, n)
        }
    }

    mutating func append(_ p: UnsafeRawPointer, _ n: Int) {
        guard n > 0 else { return }
        reserve(n)
        memcpy(base + count, p, n)
        count &+= n
    }
}
