// What the cluster's Lua layer (ClusterSource*.swift) needs from Swift: Redis connections, the
// authenticated codec (seal/open), random tokens, the SIGTERM flag.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims
internal import CHiredis

/// A shared secret (LUAMP_AUTHKEY or `authkey =`) ready to use: HMAC-SHA256 of every message, and
/// the 128-bit key the codec signs function bytecode and references with inside those messages.
final class ClusterKey {
    let hmac: HMACSHA256
    let codecKey: (UInt64, UInt64)

    init(secret: [UInt8]) {
        hmac = HMACSHA256(key: secret)
        let d = hmac.mac(Array("luamp codec key v1".utf8))
        codecKey = d.withUnsafeBytes { ($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                                        $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    }
}

/// Sealed message: `0xC1`, the 32-byte HMAC-SHA256 of (purpose, 0, body), then the codec tuple body.
/// The purpose (e.g. `task <pool> <id> <attempt>`) binds a message to the one place it belongs, so a
/// valid message cannot be replayed as another task, result or queue item.
enum ClusterCodec {
    static let magic: UInt8 = 0xC1

    static func seal(_ s: LuaStack, key: ClusterKey, purpose: [UInt8], from first: Int32, count: Int32) throws {
        try Codec.withEncodedTuple(s, from: first, count: count, path: "args", remoteKey: key.codecKey) { body in
            let tag = purpose.withUnsafeBytes { p in
                withUnsafeBytes(of: UInt8(0)) { z in key.hmac.mac([p, z, body]) }
            }
            var out = [UInt8]()
            out.reserveCapacity(33 + body.count)
            out.append(magic)
            out += tag
            try out.appendOrThrow(body)
            s.push(bytes: out)
        }
    }

    /// Verifies the MAC and only then decodes; pushes the values and returns their count.
    /// - Throws: `AuthenticationError` (nothing was decoded) or `DecodeError`.
    static func open(_ s: LuaStack, key: ClusterKey, purpose: [UInt8], _ msg: UnsafeRawBufferPointer) throws -> Int32 {
        guard msg.count >= 33, msg[0] == magic else {
            throw MPError("AuthenticationError", "refused a message that is not a sealed luamp message")
        }
        let tag = UnsafeRawBufferPointer(rebasing: msg[1..<33])
        let body = UnsafeRawBufferPointer(rebasing: msg[33...])
        let want = purpose.withUnsafeBytes { p in
            withUnsafeBytes(of: UInt8(0)) { z in key.hmac.mac([p, z, body]) }
        }
        guard HMACSHA256.equal(tag, want) else {
            throw MPError("AuthenticationError", "refused a message whose HMAC does not match (wrong LUAMP_AUTHKEY, or forged); nothing was decoded")
        }
        return try Codec.decodeTuple(s, body, remoteKey: key.codecKey)
    }
}

extension MPModule {
    static let redisMeta = "mp.RedisConnection"
    static let clusterKeyMeta = "mp.ClusterKey"

    /// Pushes the table of native functions the cluster's Lua code receives. Stack: [-0, +1].
    static func pushClusterNative(_ s: LuaStack) {
        boxMetatable(s, redisMeta, RedisConnection.self, [
            ("call", { s in try redisCall(s, block: 0, first: 2) }),
            // conn:bcall(seconds, cmd, ...): a blocking command that may wait `seconds` itself.
            ("bcall", { s in try redisCall(s, block: s.toNumber(2) ?? 0, first: 3) }),
            ("close", { s in try redis(s).drop(); return 0 }),
            ("address", { s in s.push(try redis(s).address.display); return 1 }),
        ])
        boxMetatable(s, clusterKeyMeta, ClusterKey.self)
        s.newTable()
        // connect(url, timeout, retry): parses and checks the address; connects on first use.
        s.setFunction(-1, "connect") { s in
            guard let url = s.toString(1) else { throw LuaArgumentError(1, "string expected, got \(s.typeName(at: 1))") }
            let a = try RedisAddress(parsing: url)
            let c = RedisConnection(a, timeout: s.toNumber(2) ?? 10, retry: s.toNumber(3) ?? 5)
            PoolBox.push(s, c, meta: redisMeta, uservalues: 0)
            return 1
        }
        s.setFunction(-1, "key") { s in
            guard let b = s.toBytes(1), s.type(at: 1) == .string else { throw LuaArgumentError(1, "string expected") }
            PoolBox.push(s, ClusterKey(secret: [UInt8](b)), meta: clusterKeyMeta, uservalues: 0)
            return 1
        }
        // seal(key, purpose, ...) → message
        s.setFunction(-1, "seal") { s in
            let k = try clusterKey(s, 1)
            guard let p = s.toBytes(2) else { throw LuaArgumentError(2, "string expected") }
            try ClusterCodec.seal(s, key: k, purpose: [UInt8](p), from: 3, count: s.top - 2)
            return 1
        }
        // open(key, purpose, message) → values
        s.setFunction(-1, "open") { s in
            let k = try clusterKey(s, 1)
            guard let p = s.toBytes(2) else { throw LuaArgumentError(2, "string expected") }
            guard let m = s.toBytes(3), s.type(at: 3) == .string else { throw LuaArgumentError(3, "string expected") }
            return try ClusterCodec.open(s, key: k, purpose: [UInt8](p), m)
        }
        s.setFunction(-1, "hmac_hex") { s in
            guard let k = s.toBytes(1), let d = s.toBytes(2) else { throw LuaArgumentError(1, "strings expected") }
            s.push(HMACSHA256(key: [UInt8](k)).mac([UInt8](d)).map { String(format2: $0) }.joined())
            return 1
        }
        s.setFunction(-1, "token") { s in
            var b = [UInt8](repeating: 0, count: 12)
            b.withUnsafeMutableBytes { buf in
                var got = 0
                while got < buf.count {
                    let r = luamp_getrandom(buf.baseAddress! + got, buf.count - got)
                    if r > 0 { got += r } else if r < 0 && errno != EINTR { break }
                }
            }
            s.push(b.map { String(format2: $0) }.joined())
            return 1
        }
        s.setFunction(-1, "getenv") { s in
            guard let n = s.toString(1), let v = getenv(n) else { s.pushNil(); return 1 }
            s.push(String(cString: v))
            return 1
        }
        s.setFunction(-1, "unsetenv") { s in
            if let n = s.toString(1) { unsetenv(n) }
            return 0
        }
        s.setFunction(-1, "hostname") { s in
            var buf = [CChar](repeating: 0, count: 256)
            gethostname(&buf, 255)
            s.push(buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
            return 1
        }
        // error(kind, message [, fields]): an mp error table (the local errors' metatable).
        s.setFunction(-1, "error") { s in
            let kind = s.toString(1) ?? "Error", message = s.toString(2) ?? ""
            MPError(kind, message).pushError(onto: s)
            if s.type(at: 3) == .table {
                let e = s.top
                lua_pushnil(s.L)
                while lua_next(s.L, 3) != 0 {
                    lua_pushvalue(s.L, -2)
                    lua_pushvalue(s.L, -2)
                    lua_rawset(s.L, e)
                    s.pop()
                }
            }
            return 1
        }
        s.setFunction(-1, "sigterm_install") { _ in luamp_cluster_sigterm_install(); return 0 }
        s.setFunction(-1, "sigterm") { s in s.push(luamp_cluster_sigterm_received() != 0); return 1 }
        // alarm(ms): arms the per-item timer of a worker process (0 disarms); SIGALRM keeps its
        // default action, so the process dies of it even inside C, as a local pool worker does.
        s.setFunction(-1, "alarm") { s in
            PoolWorkerLoop.armTimer(UInt32(clamping: s.toInteger(1) ?? 0))
            return 0
        }
        s.setFunction(-1, "kill") { s in
            let pid = pid_t(s.toInteger(1) ?? 0), sig = Int32(s.toInteger(2) ?? 15)
            if pid > 0 { kill(pid, sig) }
            return 0
        }
        // killpg(pid, sig): the process group `pid` leads (a worker process and what its tasks
        // started: os.execute's shell and command); setpgid([pid]): makes `pid` (0: this process)
        // lead its own group.
        s.setFunction(-1, "killpg") { s in
            let pid = pid_t(s.toInteger(1) ?? 0), sig = Int32(s.toInteger(2) ?? 9)
            if pid > 1 { kill(-pid, sig) }
            return 0
        }
        s.setFunction(-1, "setpgid") { s in
            let pid = pid_t(s.toInteger(1) ?? 0)
            _ = setpgid(pid, pid)
            return 0
        }
        addRemoteFutureNatives(s, -1)
    }

    /// Creates (once) the metatable `name` of userdata boxing a `T`: `methods` as `__index`, and
    /// a `__gc` that releases the object.
    static func boxMetatable<T: AnyObject>(_ s: LuaStack, _ name: String, _: T.Type, _ methods: [(String, SwiftFunction)] = []) {
        if luaL_newmetatable(s.L, name) != 0 {
            if !methods.isEmpty {
                s.newTable()
                for (n, f) in methods { s.setFunction(-1, n, f) }
                s.rawSet(-2, field: "__index")
            }
            s.setFunction(-1, "__gc") { s in
                _ = PoolBox.take(s, 1, as: T.self)
                return 0
            }
        }
        s.pop()
    }

    private static func redis(_ s: LuaStack) throws -> RedisConnection {
        guard let c = PoolBox.get(s, 1, meta: redisMeta, as: RedisConnection.self) else {
            throw LuaArgumentError(1, "Redis connection expected, got \(s.typeName(at: 1))")
        }
        return c
    }

    private static func clusterKey(_ s: LuaStack, _ i: Int32) throws -> ClusterKey {
        guard let k = PoolBox.get(s, i, meta: clusterKeyMeta, as: ClusterKey.self) else {
            throw LuaArgumentError(i, "cluster key expected")
        }
        return k
    }

    /// `conn:call(cmd, arg...)`: strings and numbers as arguments; the reply as Lua values.
    private static func redisCall(_ s: LuaStack, block: Double, first: Int32) throws -> Int32 {
        let c = try redis(s)
        var args: [[UInt8]] = []
        let top = s.top
        guard top >= first else { throw LuaArgumentError(first, "command expected") }
        args.reserveCapacity(Int(top - first + 1))
        for i in first...top {
            switch s.type(at: i) {
            case .string:
                args.append([UInt8](s.toBytes(i)!))
            case .number:
                if let n = s.toInteger(i) { args.append(Array(String(n).utf8)) } else { args.append(Array(String(s.toNumber(i)!).utf8)) }
            default:
                throw LuaArgumentError(i, "string or number expected, got \(s.typeName(at: i))")
            }
        }
        let r = try c.command(bytes: &args, block: block)
        defer { freeReplyObject(r) }
        try RedisConnection.push(s, r)
        return 1
    }
}

extension String {
    /// Two lowercase hex digits.
    init(format2 b: UInt8) {
        let d = Array("0123456789abcdef".utf8)
        self = String(decoding: [d[Int(b >> 4)], d[Int(b & 15)]], as: UTF8.self)
    }
}
