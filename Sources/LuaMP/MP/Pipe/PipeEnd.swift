// PipeEnd: one end of mp.Pipe — descriptors, framed send, exact-length receive, poll, EOF.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// One end of a pipe: a read descriptor, a write descriptor, or both (duplex = two kernel pipes,
/// one per direction). Frames: `Frame` (Codec). One writer and one reader per end at a time (two
/// processes writing the same end at once would interleave frames larger than `PIPE_BUF`;
/// the reader detects that and raises `DecodeError`); readers in several processes may take
/// turns (a lock around `recv`, as Python's `SimpleQueue` does).
///
/// Receiving reads exactly one frame from the kernel — its 16-byte header, then exactly its
/// payload — and never reads ahead: a pipe end inherited by several processes is one shared
/// stream, and bytes one reader took ahead would be lost to the others (a child that read ahead
/// and exited would swallow them). Each payload is read into a buffer of its exact size, freed
/// after decoding, so an end owns no buffer: closing it frees everything but the small Swift
/// object (and ends used on several threads share nothing). A receive interrupted by Ctrl-C in the middle of a
/// frame keeps what it read (`partial`), and the next receive in this process resumes there,
/// so the stream keeps its framing.
final class PipeEnd {
    private(set) var readFD: Int32
    private(set) var writeFD: Int32
    /// Set once the write end was grown to 1 MiB (first big message).
    private var grown = false
    /// A frame whose reading was interrupted (Ctrl-C): resumed by the next receive.
    private var partial: PartialFrame?
    /// The token this end travels under in `PipeMailbox` (0 until first sent). Stable, so every
    /// encoding of the end gives the same bytes (the pool's function cache compares them).
    var mailboxToken: UInt64 = 0

    /// A frame being read: header bytes so far, then the payload buffer and how much arrived.
    private struct PartialFrame {
        var header: (UInt64, UInt64) = (0, 0)
        var headerGot = 0
        var payload: UnsafeMutableRawPointer? = nil
        var length = 0
        var checksum: UInt32 = 0
        var got = 0
        var pid: pid_t = 0
    }

    init(readFD: Int32, writeFD: Int32) {
        self.readFD = readFD
        self.writeFD = writeFD
    }

    deinit {
        close()
    }

    var isClosed: Bool { readFD < 0 && writeFD < 0 }

    /// Closes both descriptors and frees a half-read frame (idempotent).
    func close() {
        if readFD >= 0 { _ = Glibc.close(readFD); readFD = -1 }
        if writeFD >= 0 { _ = Glibc.close(writeFD); writeFD = -1 }
        if let f = partial, f.pid == getpid() { free(f.payload) }
        partial = nil
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
            Frame.header(for: head, tail, into: h.baseAddress!)
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

    /// Reads into `p` until `got` reaches `want` (`got` stays right when it throws).
    /// - Returns: false at end of file.
    private func readFully(_ p: UnsafeMutableRawPointer, _ want: Int, _ got: inout Int) throws -> Bool {
        while got < want {
            let r = read(readFD, p + got, want - got)
            if r < 0 {
                if errno == EINTR { try Clock.checkInterrupt(); continue }
                throw LuaRaise("pipe receive failed: \(String(cString: strerror(errno)))")
            }
            if r == 0 { return false }
            got += r
        }
        return true
    }

    /// Receives one frame and hands its verified payload to `body` (valid only inside it).
    /// - Throws: `MPError("EOFError")` when the other end is closed and everything was read;
    ///   `MPError("DecodeError")` for a bad frame; `LuaRaise` on a send-only or closed end;
    ///   `interrupted!` on Ctrl-C (what was read is kept for the next receive).
    func receive<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try checkOpen()
        guard readFD >= 0 else { throw LuaRaise("this end of the pipe only sends (duplex = false)") }
        let me = getpid()
        var f = partial.flatMap { $0.pid == me ? $0 : nil } ?? PartialFrame(pid: me)   // never the parent's
        partial = nil
        do {
            try readFrame(&f)
        } catch let e as LuaRaise where e.message == "interrupted!" {
            partial = f
            throw e
        } catch {
            free(f.payload)
            throw error
        }
        defer { free(f.payload) }
        let payload = UnsafeRawBufferPointer(start: f.payload, count: f.length)
        guard Frame.checksum(payload) == f.checksum else { throw MPError("DecodeError", "pipe frame checksum mismatch") }
        return try body(payload)
    }

    /// Reads the rest of frame `f`: header, then the payload into a buffer of its size.
    private func readFrame(_ f: inout PartialFrame) throws {
        if f.headerGot < Frame.headerBytes {
            var got = f.headerGot
            let more = try withUnsafeMutableBytes(of: &f.header) { h in
                defer { f.headerGot = got }
                return try readFully(h.baseAddress!, Frame.headerBytes, &got)
            }
            guard more else {
                throw MPError("EOFError", f.headerGot > 0 ? "the pipe was closed in the middle of a message"
                                                           : "the other end of the pipe is closed")
            }
            let (n, sum) = try withUnsafeBytes(of: &f.header) { try Frame.parse($0.baseAddress!, stream: "on this pipe") }
            f.length = n
            f.checksum = sum
        }
        if f.payload == nil {
            guard let p = malloc(max(f.length, 1)) else {
                throw LuaRaise("not enough memory for a \(f.length)-byte message")
            }
            f.payload = p
        }
        guard try readFully(f.payload!, f.length, &f.got) else {
            throw MPError("EOFError", "the pipe was closed in the middle of a message")
        }
    }

    /// True when a message (or end of file) can be read without blocking, waiting until `deadline`.
    /// Wraps `poll` (in `Deadline.wait`'s ≤ 100 ms slices, checking Ctrl-C).
    func poll(until deadline: Deadline) throws -> Bool {
        try checkOpen()
        guard readFD >= 0 else { throw LuaRaise("this end of the pipe only sends (duplex = false)") }
        return try deadline.wait { slice in
            let r = luamp_poll_in(readFD, Deadline.pollMilliseconds(slice))
            if r < 0 { throw LuaRaise("pipe poll failed: \(String(cString: strerror(errno)))") }
            return r > 0
        }
    }
}
