// ByteWriter: the encoder's growing output buffer (malloc'd, written through raw pointers).

#if canImport(Glibc)
import Glibc
#endif

/// A growable byte buffer the encoder appends to without per-value allocations.
/// A value type with manual memory: the owner calls `release()` exactly once.
///
/// Out of memory is not an error here but a state: when the buffer cannot grow, it is freed,
/// `failed` becomes true and every later write only advances `count` (so offsets and lengths
/// the encoder computes stay consistent and nothing is ever written out of bounds). The owner
/// checks `failed` once the pass is over and raises Lua's memory error (`Codec.run`).
struct ByteWriter {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var count = 0
    private var capacity: Int
    /// True once an allocation failed: the buffer is gone and `bytes` is empty.
    private(set) var failed = false

    init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        if let p = malloc(self.capacity) {
            base = p
        } else {
            base = ByteWriter.noStorage
            self.capacity = -1
            failed = true
        }
    }

    /// Where `base` points once the storage is gone (never read or written through).
    private static var noStorage: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: 16)! }

    /// Frees the storage.
    func release() { if !failed { free(base) } }

    /// The bytes written so far (valid until the next write or `release`); empty after a failure.
    var bytes: UnsafeRawBufferPointer {
        failed ? UnsafeRawBufferPointer(start: nil, count: 0) : UnsafeRawBufferPointer(start: base, count: count)
    }

    /// The byte at `offset` (0 after a failure).
    func byte(at offset: Int) -> UInt8 { failed ? 0 : base.load(fromByteOffset: offset, as: UInt8.self) }

    /// Makes room for `n` more bytes (doubling; `realloc` moves big buffers with mremap).
    /// Returns false when there is no room (`failed`): the caller must not write then.
    @inline(__always) @discardableResult
    mutating func reserve(_ n: Int) -> Bool {
        count &+ n <= capacity || grow(n)
    }

    @inline(never)
    private mutating func grow(_ n: Int) -> Bool {
        if failed { return false }
        var c = capacity
        while c < count &+ n {
            let (next, overflow) = c < (1 << 30) ? c.multipliedReportingOverflow(by: 2) : c.addingReportingOverflow(1 << 30)
            if overflow { return fail() }
            c = next
        }
        guard let p = realloc(base, c) else { return fail() }
        base = p
        capacity = c
        return true
    }

    /// Out of memory: frees the buffer (memory the error path needs) and enters the failed state.
    private mutating func fail() -> Bool {
        free(base)
        base = ByteWriter.noStorage
        capacity = -1
        failed = true
        return false
    }

    @inline(__always)
    mutating func u8(_ v: UInt8) {
        guard reserve(1) else { count &+= 1; return }
        base.storeBytes(of: v, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// A tag byte followed by a fixed-size little-endian value.
    @inline(__always)
    mutating func tagged<T: FixedWidthInteger>(_ tag: UInt8, _ v: T) {
        guard reserve(1 + MemoryLayout<T>.size) else { count &+= 1 + MemoryLayout<T>.size; return }
        base.storeBytes(of: tag, toByteOffset: count, as: UInt8.self)
        (base + count + 1).storeBytes(of: v.littleEndian, as: T.self)
        count &+= 1 + MemoryLayout<T>.size
    }

    @inline(__always)
    mutating func int<T: FixedWidthInteger>(_ v: T) {
        guard reserve(MemoryLayout<T>.size) else { count &+= MemoryLayout<T>.size; return }
        (base + count).storeBytes(of: v.littleEndian, as: T.self)
        count &+= MemoryLayout<T>.size
    }

    /// Overwrites a previously written integer at `offset`.
    mutating func patch<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        guard !failed else { return }
        (base + offset).storeBytes(of: v.littleEndian, as: T.self)
    }

    /// Overwrites one byte at `offset`.
    mutating func patchByte(_ v: UInt8, at offset: Int) {
        guard !failed else { return }
        base.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
    }

    /// `tag`, a one-byte length and `n` (< 256) bytes from `p`, with a single capacity check.
    @inline(__always)
    mutating func shortString(_ tag: UInt8, _ p: UnsafeRawPointer, _ n: Int) {
        guard reserve(2 + n) else { count &+= 2 + n; return }
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
        guard reserve(n) else { count &+= n; return }
        memcpy(base + count, p, n)
        count &+= n
    }
}
