// PipeMailbox: how a pipe end's descriptors reach another process — SCM_RIGHTS through a socket pair the whole tree shares.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A `SOCK_SEQPACKET` socket pair made when `mp` is installed, before any fork, so every process
/// of the tree holds both ends. Sending a pipe end **posts** its descriptors on one end as an
/// `SCM_RIGHTS` record tagged with a token; the handle that travels in the message carries the
/// token, and the receiver **takes** the record with that token from the other end.
///
/// Why: the kernel holds posted descriptors itself, so the sender may close its end right after
/// sending (`conn:send(w); w:close()`) or exit, and no ptrace rights are needed (`pidfd_getfd`
/// needs them, and Yama's `ptrace_scope=1` refuses them between siblings or to a child).
///
/// Taking: records come out in order, not by token, so the receiver holds the others it reads
/// and posts them again before it returns, all under a robust mutex in the arena (one taker at
/// a time; a taker killed in between loses the records it held, nothing else). A record is taken
/// once: the same handle decoded a second time (`mp.loads` of the same bytes twice, a cached
/// pool function) falls back to copying from the sender with `pidfd_getfd`, which works while
/// the sender still holds the end and ptrace allows it. Records whose handle is never decoded
/// stay posted until the tree ends; sends that fail after encoding take theirs back
/// (`cancel`, see `SendLog`).
enum PipeMailbox {
    /// Record: magic "LMPX", UInt32 descriptor count, UInt64 token, UInt64 arena id.
    static let recordBytes = 24
    static let magic: UInt32 = 0x5850_4d4c
    /// Socket send buffer asked for (the kernel caps it without privileges): posted records are
    /// ~1 KiB each in the kernel, so this is how many ends can be in flight at once.
    static let bufferBytes: Int32 = 8 << 20

    /// Immutable once made: two descriptors and a process-shared robust mutex (which guards
    /// what it protects itself), so any thread may use it.
    private struct Shared: @unchecked Sendable {
        let post: Int32          // records are sent on this end …
        let take: Int32          // … and received from this one
        let lock: RobustMutex
    }

    /// Makes the socket pair and its lock (once per process tree; called when pipes are
    /// installed, before any fork). Safe to call again.
    static func install() {
        _ = made
    }

    /// The pair and its lock, or why they could not be made (per process tree, set once).
    private static let made: (Shared?, String?) = {
        guard let a = Arena.current else { return (nil, "mp shared memory is unavailable") }
        var fds: [Int32] = [-1, -1]
        guard luamp_fdpass_pair(&fds, bufferBytes) == 0 else {
            return (nil, "cannot create the descriptor-passing sockets: \(String(cString: strerror(errno)))")
        }
        do {
            let off = try a.allocate(64, zeroed: true)
            let m = try RobustMutex.initialize(at: a.pointer(off), kind: .normal)
            return (Shared(post: fds[0], take: fds[1], lock: m), nil)
        } catch {
            close(fds[0]); close(fds[1])
            return (nil, "cannot create the descriptor-passing lock: \(error)")
        }
    }()

    private static func shared() throws -> Shared {
        if let s = made.0 { return s }
        throw LuaRaise("cannot send a pipe end: \(made.1 ?? "descriptor passing is not set up")")
    }

    /// Posts `fds` under `token`. Waits (Ctrl-C aware) up to 5 s while the socket is full.
    /// - Throws: `LuaRaise` when too many ends are in flight, or the send fails.
    static func post(_ fds: [Int32], token: UInt64) throws {
        let m = try shared()
        var rec = record(token: token, count: fds.count)
        let until = Clock.monotonicSeconds() + 5
        while true {
            let r = rec.withUnsafeMutableBytes { b in
                fds.withUnsafeBufferPointer { luamp_fdpass_send(m.post, b.baseAddress, b.count, $0.baseAddress, Int32($0.count)) }
            }
            if r == recordBytes { SendLog.posted(token); return }
            if r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Clock.monotonicSeconds() < until {
                _ = luamp_poll_out(m.post, 100)
                try Clock.checkInterrupt()
                continue
            }
            if r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETOOMANYREFS) {
                throw LuaRaise("cannot send a pipe end: too many pipe ends are in flight (sent, not yet received)")
            }
            throw LuaRaise("cannot send a pipe end: \(String(cString: strerror(errno)))")
        }
    }

    /// Takes the record posted under `token`: its descriptors (close-on-exec), or nil when no
    /// such record is waiting (already taken, or never posted in this tree).
    static func take(_ token: UInt64) throws -> [Int32]? {
        let m = try shared()
        _ = m.lock.lockShort()     // owner died: the records it held are lost, the lock is fine
        defer { _ = m.lock.unlock() }
        var held: [(UInt64, [Int32])] = []
        defer { repost(m, held) }
        let id = Arena.current?.id ?? 0
        while true {
            var rec = [UInt8](repeating: 0, count: 64)
            var fds: [Int32] = [-1, -1, -1, -1]
            var n: Int32 = 0
            let r = rec.withUnsafeMutableBytes { b in luamp_fdpass_recv(m.take, b.baseAddress, b.count, &fds, 4, &n) }
            if r < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
                throw MPError("DecodeError", "cannot receive a pipe end: \(String(cString: strerror(errno)))")
            }
            let got = Array(fds[0..<Int(n)])
            guard r == recordBytes, rec.withUnsafeBytes({ $0.loadUnaligned(as: UInt32.self) }) == magic.littleEndian,
                  rec.withUnsafeBytes({ UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) }) == id else {
                for fd in got { close(fd) }          // not ours: drop it
                continue
            }
            let t = rec.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
            if t == token { return got }
            held.append((t, got))
        }
    }

    /// Takes back a record this process posted for a send that failed, closing its descriptors.
    static func cancel(_ token: UInt64) {
        if let fds = try? take(token) { for fd in fds { close(fd) } }
    }

    /// Posts again the records a taker held (blocking up to 5 s each; lost if that fails).
    private static func repost(_ m: Shared, _ held: [(UInt64, [Int32])]) {
        for (token, fds) in held {
            var rec = record(token: token, count: fds.count)
            let until = Clock.monotonicSeconds() + 5
            while true {
                let r = rec.withUnsafeMutableBytes { b in
                    fds.withUnsafeBufferPointer { luamp_fdpass_send(m.post, b.baseAddress, b.count, $0.baseAddress, Int32($0.count)) }
                }
                if r >= 0 || !(errno == EAGAIN || errno == EWOULDBLOCK) || Clock.monotonicSeconds() >= until { break }
                _ = luamp_poll_out(m.post, 100)
            }
            for fd in fds { close(fd) }
        }
    }

    private static func record(token: UInt64, count: Int) -> [UInt8] {
        var rec = [UInt8](repeating: 0, count: recordBytes)
        rec.withUnsafeMutableBytes { b in
            b.storeBytes(of: magic.littleEndian, as: UInt32.self)
            b.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 4, as: UInt32.self)
            b.storeBytes(of: token.littleEndian, toByteOffset: 8, as: UInt64.self)
            b.storeBytes(of: (Arena.current?.id ?? 0).littleEndian, toByteOffset: 16, as: UInt64.self)
        }
        return rec
    }

    /// A fresh random token (never 0).
    static func newToken() -> UInt64 {
        var rng = SystemRandomNumberGenerator()
        var t: UInt64 = 0
        while t == 0 { t = rng.next() }
        return t
    }
}
