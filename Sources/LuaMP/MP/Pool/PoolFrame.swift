// Pool channel framing: frames are `[u32 length][u32 checksum][payload]`; builders, reader and writes for both ends.
#if canImport(Glibc)
import Glibc
#endif

/// The frames a pool host and its workers exchange over their pipes (one writer, one reader
/// per pipe, so frames never interleave). The payload's first byte is its kind; numbers are
/// little-endian. A frame whose length exceeds `maxPayload` or whose checksum does not match
/// is a protocol error: the host then stops that worker.
///
/// | kind | direction | payload after the kind byte |
/// |---|---|---|
/// | `F` define | host → worker | `u32` function id, codec value (the function) |
/// | `C` clear | host → worker | — (forget every function id) |
/// | `L` trace flush | host → worker | — (write buffered trace events; `mp.trace_stop`) |
/// | `T` task | host → worker | `u64` chunk id, `u32` function id, `u8` mode, `u32` count, `u64` first position, codec value (items) |
/// | `R` result | worker → host | `u64` chunk id, codec value (results table) |
/// | `E` error | worker → host | `u64` chunk id, `u32`+bytes message, `u32`+bytes traceback |
enum PoolFrame {
    static let headerSize = 8
    /// Largest payload accepted (1 GiB): a larger length is a corrupt or hostile frame.
    static let maxPayload = 1 << 30

    static let define: UInt8 = 0x46    // "F"
    static let clear: UInt8 = 0x43     // "C"
    static let traceFlush: UInt8 = 0x4C  // "L": write buffered trace events now (mp.trace_stop)
    static let task: UInt8 = 0x54      // "T"
    static let result: UInt8 = 0x52    // "R"
    static let failure: UInt8 = 0x45   // "E"
    /// One item's outcome in a chunk run item by item (timeout, retries, errors = "return"):
    /// id u64, index u32, ok u8, then a one-value tuple (ok) or message, traceback, value.
    static let item: UInt8 = 0x49      // "I"
    /// `flags` of a T frame: run item by item, one `I` frame each, then an empty `R`.
    static let perItem: UInt8 = 1

    /// A fast 32-bit checksum (multiply-xorshift over four independent 8-byte lanes, so the
    /// multiplications overlap): catches torn or mixed frames at several GB/s; not a MAC
    /// (function chunks carry the codec's own MAC).
    static func checksum(_ p: UnsafeRawPointer, _ n: Int) -> UInt32 {
        let k0: UInt64 = 0xFF51_AFD7_ED55_8CCD, k1: UInt64 = 0xC4CE_B9FE_1A85_EC53
        var a: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n), b = a &* k0, c = a &* k1, d = ~a
        var i = 0
        while i + 32 <= n {
            a = (a ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* k0
            b = (b ^ p.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)) &* k1
            c = (c ^ p.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)) &* k0
            d = (d ^ p.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)) &* k1
            a ^= a >> 29; b ^= b >> 31; c ^= c >> 27; d ^= d >> 33
            i += 32
        }
        var h = a ^ (b &* 31) ^ (c &* 127) ^ (d &* 8191)
        while i < n {
            h = (h ^ UInt64(p.load(fromByteOffset: i, as: UInt8.self))) &* k1
            i += 1
        }
        h = (h ^ (h >> 33)) &* k0
        h ^= h >> 32
        return UInt32(truncatingIfNeeded: h)
    }

    /// Starts a frame at the end of `out` (a zeroed header, patched by `finish`); returns its offset.
    @inline(__always)
    static func begin(_ out: inout [UInt8], kind: UInt8) -> Int {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: headerSize))
        out.append(kind)
        return start
    }

    /// Writes length and checksum of the frame that starts at `start` and runs to the end of `out`.
    /// - Throws: `MPError("SendError", …)` when the payload is larger than `maxPayload`.
    static func finish(_ out: inout [UInt8], from start: Int) throws {
        let len = out.count - start - headerSize
        guard len <= maxPayload else {
            throw MPError("SendError", "message of \(len) bytes is larger than the pool's 1 GiB frame limit")
        }
        out.withUnsafeMutableBytes { b in
            let base = b.baseAddress! + start
            let sum = checksum(base + headerSize, len)
            base.storeBytes(of: UInt32(len).littleEndian, as: UInt32.self)
            (base + 4).storeBytes(of: sum.littleEndian, as: UInt32.self)
        }
    }

    /// `finish` for a `T` frame (which starts at offset 0 of `out`): checks the size and writes
    /// the length; the chunk id and the checksum are written by `stampTask` at each send.
    static func finishTask(_ out: inout [UInt8], from start: Int) throws {
        precondition(start == 0, "a task frame starts its buffer")
        let len = out.count - headerSize
        guard len <= maxPayload else {
            throw MPError("SendError", "message of \(len) bytes is larger than the pool's 1 GiB frame limit")
        }
        out.withUnsafeMutableBytes { $0.baseAddress!.storeBytes(of: UInt32(len).littleEndian, as: UInt32.self) }
    }

    /// Appends a `T` frame's fields after `begin`: the chunk id and item range (stamped at
    /// each send), function id, mode, item count, per-item timeout (ms, 0: none) and flags.
    /// The codec tuple of the items follows.
    static func appendTaskHeader(_ out: inout [UInt8], function: UInt32, mode: UInt8, count: UInt32,
                                 timeoutMs: UInt32, flags: UInt8, position: Int) {
        out.appendLE(UInt64(0))                   // the chunk id, stamped at send
        out.appendLE(function)
        out.append(mode)
        out.appendLE(count)
        out.appendLE(UInt32(0))                   // first item to run, stamped at send
        out.appendLE(count)                       // end of the items to run, stamped at send
        out.appendLE(timeoutMs)
        out.append(flags)
        out.appendLE(UInt64(position))            // the chunk's first input position (traces)
    }

    /// Writes chunk id `id` and the item range `start..<end` into a `T` frame built by
    /// `finishTask`, and its checksum.
    static func stampTask(_ frame: inout [UInt8], id: UInt64, start: UInt32, end: UInt32) {
        frame.withUnsafeMutableBytes { b in
            let base = b.baseAddress!
            (base + headerSize + 1).storeBytes(of: id.littleEndian, toByteOffset: 0, as: UInt64.self)
            (base + headerSize + 18).storeBytes(of: start.littleEndian, toByteOffset: 0, as: UInt32.self)
            (base + headerSize + 22).storeBytes(of: end.littleEndian, toByteOffset: 0, as: UInt32.self)
            let len = b.count - headerSize
            (base + 4).storeBytes(of: checksum(base + headerSize, len).littleEndian, as: UInt32.self)
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends a little-endian integer.
    @inline(__always)
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}

/// A channel broke its protocol (bad length, checksum, unexpected frame): the peer is stopped.
struct PoolProtocolError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Buffers bytes read from a pipe and cuts them into frames. Payloads handed out by `next()`
/// stay valid until the next `fill`. Owns malloc'd memory: call `release()` once.
struct FrameInbox {
    private var buf: UnsafeMutableRawPointer
    private var cap: Int
    private var start = 0
    private var end = 0
    /// Bytes of a result frame too big for memory still to be read and dropped.
    private var skip = 0
    /// The failure frame standing in for that result (malloc'd), until `next()` hands it out.
    private var standIn: UnsafeMutableRawPointer?
    private var standInCount = 0
    private var standInGiven = false

    init(capacity: Int = 64 * 1024) {
        cap = capacity
        buf = malloc(capacity)!
    }

    func release() {
        free(buf)
        free(standIn)
    }

    enum Fill { case data, wouldBlock, eof }

    /// Reads once from `fd` (retrying EINTR) after making room for the frame being assembled.
    /// - Throws: `PoolProtocolError` on a read error other than EAGAIN.
    mutating func fill(_ fd: Int32) throws -> Fill {
        if standInGiven {
            free(standIn)
            standIn = nil
            standInGiven = false
        }
        if skip > 0 { return try drop(fd) }
        if start > 0 {
            if end > start { memmove(buf, buf + start, end - start) }
            end -= start
            start = 0
        }
        var want = cap
        if end >= PoolFrame.headerSize {
            let len = Int(UInt32(littleEndian: buf.loadUnaligned(as: UInt32.self)))
            want = max(cap, PoolFrame.headerSize + len)
        }
        if end == cap || want > cap {
            var c = max(cap * 2, want)
            if c > PoolFrame.maxPayload + PoolFrame.headerSize { c = PoolFrame.maxPayload + PoolFrame.headerSize }
            if let p = realloc(buf, c) {
                buf = p
                cap = c
            } else if try outOfMemory(frameSize: want) {
                return try drop(fd)
            } else if end == cap {
                throw PoolProtocolError("out of memory for a \(c)-byte frame")
            }
        }
        while true {
            let n = read(fd, buf + end, cap - end)
            if n > 0 { end += n; return .data }
            if n == 0 { return .eof }
            if errno == EINTR { continue }
            if errno == EAGAIN { return .wouldBlock }
            throw PoolProtocolError("read failed: \(String(cString: strerror(errno)))")
        }
    }

    /// A frame of `frameSize` bytes does not fit in memory. A result frame whose kind and chunk
    /// id are already here is replaced by a failure frame for that chunk (`not enough memory to
    /// receive …`) and its bytes are dropped as they arrive, so the worker and the protocol go
    /// on. Returns false when that is not possible (yet): the caller reads on, or gives up.
    private mutating func outOfMemory(frameSize: Int) throws -> Bool {
        let h = PoolFrame.headerSize
        guard end - start >= h + 9, standIn == nil else { return false }
        let kind = buf.load(fromByteOffset: start + h, as: UInt8.self)
        guard kind == PoolFrame.result || kind == PoolFrame.failure else { return false }
        let id = buf.loadUnaligned(fromByteOffset: start + h + 1, as: UInt64.self)
        let message = Array("not enough memory to receive the result (\(frameSize - h) bytes)".utf8)
        let n = 1 + 8 + 4 + message.count + 4 + 4
        guard let p = malloc(n) else { return false }
        p.storeBytes(of: PoolFrame.failure, as: UInt8.self)
        (p + 1).storeBytes(of: id, as: UInt64.self)                      // as it came (little-endian)
        (p + 9).storeBytes(of: UInt32(message.count).littleEndian, as: UInt32.self)
        message.withUnsafeBytes { _ = memcpy(p + 13, $0.baseAddress!, message.count) }
        (p + 13 + message.count).storeBytes(of: UInt32(0), as: UInt32.self)   // no traceback
        (p + 17 + message.count).storeBytes(of: UInt32(0), as: UInt32.self)   // no error value
        standIn = p
        standInCount = n
        skip = frameSize - (end - start)
        start = 0
        end = 0
        return true
    }

    /// Reads and drops bytes of the frame being skipped (never past its end).
    private mutating func drop(_ fd: Int32) throws -> Fill {
        while true {
            let n = read(fd, buf, min(skip, cap))
            if n > 0 { skip -= n; return .data }
            if n == 0 { return .eof }
            if errno == EINTR { continue }
            if errno == EAGAIN { return .wouldBlock }
            throw PoolProtocolError("read failed: \(String(cString: strerror(errno)))")
        }
    }

    /// The next complete frame's payload, or nil until more bytes arrive.
    /// - Throws: `PoolProtocolError` for an oversized length or a checksum mismatch.
    mutating func next() throws -> UnsafeRawBufferPointer? {
        if let p = standIn, !standInGiven {
            standInGiven = true
            return UnsafeRawBufferPointer(start: p, count: standInCount)
        }
        if skip > 0 { return nil }
        guard end - start >= PoolFrame.headerSize else { return nil }
        let p = buf + start
        let len = Int(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        guard len >= 1, len <= PoolFrame.maxPayload else { throw PoolProtocolError("bad frame length \(len)") }
        guard end - start >= PoolFrame.headerSize + len else { return nil }
        let sum = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard PoolFrame.checksum(p + PoolFrame.headerSize, len) == sum else {
            throw PoolProtocolError("frame checksum mismatch")
        }
        start += PoolFrame.headerSize + len
        return UnsafeRawBufferPointer(start: p + PoolFrame.headerSize, count: len)
    }
}

enum PoolIO {
    /// Writes all of `bytes` to a blocking descriptor, retrying EINTR. Returns false on EPIPE
    /// or another error (the peer is gone).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n > 0 { off += n; continue }
            if n < 0 && errno == EINTR { continue }
            return false
        }
        return true
    }

    /// One non-blocking write attempt; returns bytes written (0 when the pipe is full), or -1
    /// when the reader is gone (EPIPE) or the write failed.
    static func writeSome(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        while true {
            let r = write(fd, p, n)
            if r >= 0 { return r }
            if errno == EINTR { continue }
            if errno == EAGAIN { return 0 }
            return -1
        }
    }
}
