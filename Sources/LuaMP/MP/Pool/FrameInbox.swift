// FrameInbox: the host's and a worker's reader of pool channels — buffers a pipe's bytes and cuts them into verified `Frame`s.
#if canImport(Glibc)
import Glibc
#endif

/// A channel broke its protocol (bad length, checksum, unexpected frame): the peer is stopped.
struct PoolProtocolError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Buffers bytes read from a pool channel's pipe and cuts them into `Frame`s (magic, length
/// cap and checksum checked by `next()`). Payloads handed out by `next()` stay valid until the
/// next `fill`. Owns malloc'd memory: call `release()` once.
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
        if end >= Frame.headerBytes, let n = Frame.announcedLength(buf) {   // a bad header: next() says so
            want = max(cap, Frame.headerBytes + n)
        }
        if end == cap || want > cap {
            var c = max(cap * 2, want)
            if c > Int(Frame.maxPayload) + Frame.headerBytes { c = Int(Frame.maxPayload) + Frame.headerBytes }
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
        let h = Frame.headerBytes
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
    /// - Throws: `PoolProtocolError` for a bad magic, an empty or oversized length, or a checksum mismatch.
    mutating func next() throws -> UnsafeRawBufferPointer? {
        if let p = standIn, !standInGiven {
            standInGiven = true
            return UnsafeRawBufferPointer(start: p, count: standInCount)
        }
        if skip > 0 { return nil }
        let h = Frame.headerBytes
        guard end - start >= h else { return nil }
        let p = buf + start
        let len: Int, sum: UInt32
        do { (len, sum) = try Frame.parse(p, stream: "on a pool channel") } catch { throw PoolProtocolError(error.message) }
        guard len >= 1 else { throw PoolProtocolError("bad frame length \(len)") }   // a kind byte at least
        guard end - start >= h + len else { return nil }
        let payload = UnsafeRawBufferPointer(start: p + h, count: len)
        guard Frame.checksum(payload) == sum else { throw PoolProtocolError("frame checksum mismatch") }
        start += h + len
        return payload
    }
}

