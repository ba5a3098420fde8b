// PipeEnd: one end of mp.Pipe — descriptors, framed send, buffered receive, poll, EOF.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// One end of a pipe: a read descriptor, a write descriptor, or both (duplex = two kernel pipes,
/// one per direction). Frames: `PipeFrame`. One writer and one reader per end at a time (two
/// processes writing the same end at once would interleave frames larger than `PIPE_BUF`;
/// the reader detects that and raises `DecodeError`).
///
/// Receiving reads as much as the kernel has into a 64 KiB buffer, so a stream of small
/// messages costs one `read` per many messages. The buffer belongs to the process that filled
/// it: a child forked while the parent had read ahead drops the copy it inherited (those
/// messages are the parent's).
final class PipeEnd {
    private(set) var readFD: Int32
    private(set) var writeFD: Int32
    /// Set once the write end was grown to 1 MiB (first big message).
    private var grown = false
    private var buffer: UnsafeMutableRawPointer
    private static let bufferBytes = 64 * 1024
    private var start = 0
    private var end = 0
    private var bufferPID: pid_t = 0

    init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writeFD = writeFD
        buffer = malloc(readFD >= 0 ? PipeEnd.bufferBytes : 16)!   // send-only ends never read
    }

    deinit {
        close()
        free(buffer)
    }

    var isClosed: Bool { readFD < 0 && writeFD < 0 }

    /// Closes both descriptors (idempotent).
    func close() {
        if readFD >= 0 { _ = Glibc.close(readFD); readFD = -1 }
        if writeFD >= 0 { _ = Glibc.close(writeFD); writeFD = -1 }
        start = 0; end = 0
    }

    private func checkOpen() throws {
        if isClosed { throw LuaRaise("the pipe end is closed") }
    }

    // MARK: send

    /// Sends one frame whose payload is `head` followed by `body` (blocks while the pipe is full).
    /// - Throws: `LuaRaise` on a receive-only or closed end, or when the other end is closed
    ///   (`EPIPE`: SIGPIPE is ignored); `interrupted!` on Ctrl-C.
    /// Wraps `writev`, `fcntl(F_SETPIPE_SZ)`.
    func send(_ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer? = nil) throws {
        try checkOpen()
        guard writeFD >= 0 else { throw LuaRaise("this end of the pipe only receives (duplex = false)") }
        let tail = body ?? UnsafeRawBufferPointer(start: nil, count: 0)
        if !grown && head.count + tail.count >= 64 * 1024 {
            grown = true
            _ = luamp_pipe_set_size(writeFD, 1 << 20)   // may fail past the per-user limit: keep the size
        }
        var header = (UInt64(0), UInt64(0))
        try withUnsafeMutableBytes(of: &header) { h in
            PipeFrame.header(for: head, tail, into: h.baseAddress!)
            let parts = (UnsafeRawBufferPointer(h), head, tail)
            try withUnsafeTemporaryAllocation(of: iovec.self, capacity: 3) { iov in
                var skip = 0        // bytes of the frame already written
                let total = parts.0.count + parts.1.count + parts.2.count
                while skip < total {
                    var n = 0, at = 0
                    for k in 0..<3 {
                        let part = k == 0 ? parts.0 : (k == 1 ? parts.1 : parts.2)
                        guard part.count > 0 else { continue }
                        if skip < at + part.count {
                            let off = max(0, skip - at)
                            iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: part.baseAddress! + off),
                                           iov_len: part.count - off)
                            n += 1
                        }
                        at += part.count
                    }
                    let r = writev(writeFD, iov.baseAddress, Int32(n))
                    if r < 0 {
                        if errno == EINTR { try Clock.checkInterrupt(); continue }
                        if errno == EPIPE { throw LuaRaise("broken pipe: the receiving end is closed") }
                        throw LuaRaise("pipe send failed: \(String(cString: strerror(errno)))")
                    }
                    skip += r
                }
            }
        }
    }

    // MARK: receive

    /// Drops read-ahead bytes inherited from the parent at fork.
    private func claimBuffer() {
        let me = getpid()
        if bufferPID != me {
            if bufferPID != 0 { start = 0; end = 0 }
            bufferPID = me
        }
    }

    /// Reads more bytes into the buffer (blocking). Returns false at end of file.
    private func fill() throws -> Bool {
        if start > 0 && start == end { start = 0; end = 0 }
        if end == PipeEnd.bufferBytes {
            memmove(buffer, buffer + start, end - start)
            end -= start; start = 0
        }
        while true {
            let r = read(readFD, buffer + end, PipeEnd.bufferBytes - end)
            if r < 0 {
                if errno == EINTR { try Clock.checkInterrupt(); continue }
                throw LuaRaise("pipe receive failed: \(String(cString: strerror(errno)))")
            }
            if r == 0 { return false }
            end += r
            return true
        }
    }

    private func eof() -> MPError {
        MPError("EOFError", end > start ? "the pipe was closed in the middle of a message" : "the other end of the pipe is closed")
    }

    /// Receives one frame and hands its verified payload to `body` (valid only inside it).
    /// - Throws: `MPError("EOFError")` when the other end is closed and everything was read;
    ///   `MPError("DecodeError")` for a bad frame; `LuaRaise` on a send-only or closed end.
    func receive<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try checkOpen()
        guard readFD >= 0 else { throw LuaRaise("this end of the pipe only sends (duplex = false)") }
        claimBuffer()
        while end - start < PipeFrame.headerBytes {
            if !(try fill()) { throw eof() }
        }
        let (n, sum) = try PipeFrame.parse(buffer + start)
        let frame = PipeFrame.headerBytes + n
        if frame <= PipeEnd.bufferBytes {
            if start + frame > PipeEnd.bufferBytes {     // make room after the header
                memmove(buffer, buffer + start, end - start)
                end -= start; start = 0
            }
            while end - start < frame {
                if !(try fill()) { throw eof() }
            }
            let payload = UnsafeRawBufferPointer(start: buffer + start + PipeFrame.headerBytes, count: n)
            start += frame
            guard PipeFrame.checksum(payload) == sum else { throw MPError("DecodeError", "pipe frame checksum mismatch") }
            return try body(payload)
        }
        // A big frame: read the payload straight into its own buffer.
        guard let big = malloc(n) else { throw LuaRaise("not enough memory for a \(n)-byte message") }
        defer { free(big) }
        start += PipeFrame.headerBytes
        var got = min(n, end - start)
        memcpy(big, buffer + start, got)
        start += got
        while got < n {
            let r = read(readFD, big + got, n - got)
            if r < 0 {
                if errno == EINTR { try Clock.checkInterrupt(); continue }
                throw LuaRaise("pipe receive failed: \(String(cString: strerror(errno)))")
            }
            if r == 0 { throw MPError("EOFError", "the pipe was closed in the middle of a message") }
            got += r
        }
        let payload = UnsafeRawBufferPointer(start: big, count: n)
        guard PipeFrame.checksum(payload) == sum else { throw MPError("DecodeError", "pipe frame checksum mismatch") }
        return try body(payload)
    }

    /// True when a message (or end of file) can be read without blocking, waiting until `deadline`.
    /// Wraps `poll` (in ≤ 100 ms slices, checking Ctrl-C).
    func poll(until deadline: Deadline) throws -> Bool {
        try checkOpen()
        guard readFD >= 0 else { throw LuaRaise("this end of the pipe only sends (duplex = false)") }
        claimBuffer()
        if end > start { return true }
        while true {
            let slice = deadline.nextSlice
            let ms = Int32(min(UInt64(100), (slice + 999_999) / 1_000_000))
            let r = luamp_poll_in(readFD, ms)
            if r > 0 { return true }
            if r < 0 { throw LuaRaise("pipe poll failed: \(String(cString: strerror(errno)))") }
            try Clock.checkInterrupt()
            if deadline.hasPassed { return false }
        }
    }
}
