// PoolIO: the writes of pool channels (all of a frame to a blocking pipe, or what a non-blocking pipe takes).
#if canImport(Glibc)
import Glibc
#endif

/// Raw writes to a pool channel's pipe; the frames themselves are built by `PoolFrame`.
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
