// One process's connection to Redis through hiredis (synchronous): connect, AUTH, SELECT, commands,
// bounded reconnection, and a new connection after fork (a socket is never shared by two processes).
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims
internal import CHiredis

/// Where a cluster lives: `redis://[user:password@]host[:port][/db]`.
struct RedisAddress: Equatable {
    var host = "127.0.0.1"
    var port: Int32 = 6379
    var user: String?
    var password: String?
    var db = 0
    /// The address as users wrote it, without the password (for messages).
    var display: String

    /// Parses `url`. - Throws: `LuaRaise` naming what is wrong.
    init(parsing url: String) throws {
        guard url.hasPrefix("redis://") else {
            throw LuaRaise("bad cluster address '\(url)': expected redis://[user:password@]host[:port][/db]")
        }
        var rest = Substring(url.dropFirst(8))
        var shown = "redis://"
        if let at = rest.lastIndex(of: "@") {
            let cred = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = cred.firstIndex(of: ":") {
                let u = String(cred[..<colon])
                user = u.isEmpty ? nil : u
                password = String(cred[cred.index(after: colon)...])
            } else {
                password = String(cred)
            }
            shown += (user.map { $0 + ":" } ?? ":") + "***@"
        }
        if let slash = rest.firstIndex(of: "/") {
            let d = rest[rest.index(after: slash)...]
            if !d.isEmpty {
                guard let n = Int(d), n >= 0 else { throw LuaRaise("bad cluster address '\(url)': database '\(d)' is not a number") }
                db = n
            }
            rest = rest[..<slash]
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int32(rest[rest.index(after: colon)...]), p > 0, p < 65536 else {
                throw LuaRaise("bad cluster address '\(url)': bad port")
            }
            port = p
            rest = rest[..<colon]
        }
        if !rest.isEmpty { host = String(rest) }
        display = shown + "\(host):\(port)" + (db != 0 ? "/\(db)" : "")
    }
}

/// A Redis connection owned by one process. After `fork()` the child's first command opens its
/// own socket (the parent's context is dropped without a word on the wire).
final class RedisConnection {
    let address: RedisAddress
    private var ctx: UnsafeMutablePointer<redisContext>?
    private var owner: pid_t = 0
    /// Counts the sockets this connection opened (a new one after a reconnect or a fork).
    private(set) var generation = 0
    /// Seconds a command waits for its reply (blocking commands add their own timeout).
    var timeout: Double
    /// Seconds spent retrying a connection that cannot be made before ConnectionError.
    var retry: Double

    init(_ address: RedisAddress, timeout: Double, retry: Double) {
        self.address = address
        self.timeout = timeout
        self.retry = retry
    }

    deinit { drop() }

    /// Closes the socket (in the owning process only; another process just forgets it).
    func drop() {
        if let c = ctx {
            // Another process (a fork) closes its copy of the socket and leaks the context's
            // memory: freeing it is safe too, but nothing may be written on the parent's stream.
            if owner == getpid() { redisFree(c) } else { close(c.pointee.fd) }
        }
        ctx = nil
    }

    private func connectionError(_ what: String) -> MPError {
        MPError("ConnectionError", "Redis at \(address.display): \(what)", [("address", .string(address.display))])
    }

    private static func tv(_ s: Double) -> timeval {
        timeval(tv_sec: Int(s), tv_usec: Int((s - Double(Int(s))) * 1e6))
    }

    /// A connected context, connecting (with backoff, for up to `retry` seconds) if needed.
    private func context() throws -> UnsafeMutablePointer<redisContext> {
        if owner != getpid() { if ctx != nil { drop() } }
        if let c = ctx { return c }
        let deadline = Clock.monotonicSeconds() + retry
        var pause = 0.05
        while true {
            try Clock.checkInterrupt()
            var why = "cannot connect"
            if let c = redisConnectWithTimeout(address.host, address.port, Self.tv(min(2, max(0.2, retry)))) {
                if c.pointee.err == 0 {
                    _ = redisEnableKeepAlive(c)
                    ctx = c; owner = getpid(); generation += 1
                    do {
                        try handshake()
                        return c
                    } catch let e as MPError where e.kind == "RedisError" {
                        drop()
                        throw connectionError("refused the connection: \(e.message)")
                    } catch {
                        drop()
                        throw error
                    }
                }
                why = String(cString: withUnsafePointer(to: &c.pointee.errstr) { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) })
                redisFree(c)
            }
            if Clock.monotonicSeconds() + pause > deadline {
                throw connectionError("\(why) (retried for \(retry) s)")
            }
            try Clock.sleep(seconds: pause)
            pause = min(pause * 2, 0.5)
        }
    }

    private func handshake() throws {
        if let pw = address.password {
            let r = try command(address.user.map { ["AUTH", $0, pw] } ?? ["AUTH", pw])
            freeReplyObject(r)
        }
        if address.db != 0 { freeReplyObject(try command(["SELECT", String(address.db)])) }
    }

    /// Sends one command and returns its reply (the caller frees it). A failure after the command
    /// may have been sent raises ConnectionError at once (whether it ran is unknown); a Redis
    /// error reply throws `RedisError`.
    func command(_ args: [String], block: Double = 0) throws -> UnsafeMutablePointer<redisReply> {
        var bytes = args.map { Array($0.utf8) }
        return try command(bytes: &bytes, block: block)
    }

    func command(bytes args: inout [[UInt8]], block: Double = 0) throws -> UnsafeMutablePointer<redisReply> {
        let c = try context()
        _ = redisSetTimeout(c, Self.tv(timeout + block))
        var lens = args.map { $0.count }
        let raw: UnsafeMutableRawPointer? = withArrayOfPointers(&args) { ptrs in
            lens.withUnsafeMutableBufferPointer { l in
                redisCommandArgv(c, Int32(ptrs.count), ptrs.baseAddress, l.baseAddress)
            }
        }
        guard let r = raw?.assumingMemoryBound(to: redisReply.self) else {
            let why = errno == EAGAIN || errno == EWOULDBLOCK ? "no reply within \(timeout + block) s"
                : String(cString: withUnsafePointer(to: &c.pointee.errstr) { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) })
            drop()
            throw connectionError("lost the connection during \(String(decoding: args.first ?? [], as: UTF8.self)): \(why)")
        }
        if r.pointee.type == REDIS_REPLY_ERROR {
            let msg = String(decoding: UnsafeRawBufferPointer(start: r.pointee.str, count: r.pointee.len), as: UTF8.self)
            freeReplyObject(r)
            throw MPError("RedisError", msg, [("address", .string(address.display))])
        }
        return r
    }
}

extension RedisConnection {
    /// The socket of the current connection, connecting if needed.
    func socket() throws -> Int32 { try context().pointee.fd }

    /// Writes one command without waiting for its reply (read it with `reply()` once the socket
    /// is readable). - Throws: ConnectionError when it cannot be written.
    func send(_ args: [String]) throws {
        let c = try context()
        var bytes = args.map { Array($0.utf8) }
        var lens = bytes.map { $0.count }
        let r = withArrayOfPointers(&bytes) { ptrs in
            lens.withUnsafeMutableBufferPointer { l in redisAppendCommandArgv(c, Int32(ptrs.count), ptrs.baseAddress, l.baseAddress) }
        }
        var done: Int32 = 0
        if r == REDIS_OK { while redisBufferWrite(c, &done) == REDIS_OK && done == 0 {} }
        guard r == REDIS_OK, done != 0 else {
            drop()
            throw connectionError("lost the connection during \(args.first ?? "")")
        }
    }

    /// Reads what the socket has (call only once poll() said it is readable). Returns whether a
    /// whole reply arrived, and that reply (the caller frees it); a closed or broken socket is
    /// dropped and counts as arrived with no reply (the caller sends again on a new connection).
    func reply() -> (arrived: Bool, reply: UnsafeMutablePointer<redisReply>?) {
        guard let c = ctx, owner == getpid() else { return (true, nil) }
        if redisBufferRead(c) != REDIS_OK { drop(); return (true, nil) }
        var r: UnsafeMutableRawPointer?
        if redisGetReplyFromReader(c, &r) != REDIS_OK { drop(); return (true, nil) }
        guard let reply = r else { return (false, nil) }
        return (true, reply.assumingMemoryBound(to: redisReply.self))
    }
}

/// Lends `body` C pointers to each element's bytes.
private func withArrayOfPointers<R>(_ arrays: inout [[UInt8]], _ body: (UnsafeMutableBufferPointer<UnsafePointer<CChar>?>) -> R) -> R {
    let n = arrays.count
    let ptrs = UnsafeMutableBufferPointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, n))
    defer { ptrs.deallocate() }
    var pinned: [UnsafeMutableRawPointer] = []
    pinned.reserveCapacity(n)
    defer { for p in pinned { free(p) } }
    for i in 0..<n {
        let a = arrays[i]
        let m = malloc(max(1, a.count))!
        a.withUnsafeBytes { if $0.count > 0 { memcpy(m, $0.baseAddress!, $0.count) } }
        pinned.append(m)
        ptrs[i] = UnsafePointer(m.assumingMemoryBound(to: CChar.self))
    }
    return body(ptrs)
}

extension RedisConnection {
    /// Pushes a reply as Lua values: bulk and status strings as strings, integers, nil, arrays
    /// as tables (nil elements as false). Stack: [-0, +1].
    static func push(_ s: LuaStack, _ r: UnsafeMutablePointer<redisReply>) throws {
        switch r.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_ERROR:
            s.push(bytes: UnsafeRawBufferPointer(start: r.pointee.str, count: r.pointee.len))
        case REDIS_REPLY_INTEGER:
            s.push(Int64(r.pointee.integer))
        case REDIS_REPLY_ARRAY:
            let n = Int(r.pointee.elements)
            guard lua_checkstack(s.L, 4) != 0 else { throw LuaError.memory("not enough memory") }
            s.newTable(arrayCount: Int32(min(n, 1 << 20)))
            for i in 0..<n {
                let e = r.pointee.element[i]!
                if e.pointee.type == REDIS_REPLY_NIL { s.push(false) } else { try push(s, e) }
                s.rawSet(-2, index: Int64(i + 1))
            }
        default:
            s.pushNil()
        }
    }
}
