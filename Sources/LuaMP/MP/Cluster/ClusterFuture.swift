// A remote pool's results as the same AsyncResult userdata a local pool returns (an MPFuture over
// the Lua job), and the descriptor a waiting host sleeps on until a worker delivers a result.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims
internal import CHiredis

/// The host process's results line for one Redis address: a second connection that keeps one
/// `BLMPOP` outstanding on the process's results list (`luamp:host:TOKEN`), to which DELIVER
/// pushes each result of this process's pools, so the socket becomes readable with the results
/// themselves. Waits poll `fd`: a stable descriptor (a duplicate of the current socket, moved
/// onto a new one after a reconnect).
final class RedisNotifier {
    let conn: RedisConnection
    let key: String
    /// Results one reply may carry.
    static let batch = 64
    private var armed = false
    private var stable: Int32 = -1
    private var generation = -1

    init(_ conn: RedisConnection, key: String) {
        self.conn = conn
        self.key = key
    }

    deinit { if stable >= 0 { close(stable) } }

    /// The descriptor to poll while armed; -1 otherwise.
    var fd: Int32 { armed ? stable : -1 }

    /// Makes sure one BLMPOP is outstanding (written, its reply unread).
    /// - Throws: ConnectionError when Redis cannot be reached (after the connection's retry).
    func arm() throws {
        if armed { return }
        try conn.send(["BLMPOP", "60", "1", key, "LEFT", "COUNT", String(Self.batch)])
        let sock = try conn.socket()
        if conn.generation != generation || stable < 0 {
            if stable < 0 {
                stable = fcntl(sock, F_DUPFD_CLOEXEC, 0)
            } else if dup2(sock, stable) >= 0 {
                _ = fcntl(stable, F_SETFD, FD_CLOEXEC)
            }
            generation = conn.generation
        }
        armed = stable >= 0
    }

    /// Waits up to `seconds` (0: not at all) for the outstanding BLMPOP's reply. Returns false
    /// when nothing came; else true (also when none was outstanding, it timed out in Redis or the
    /// connection broke: the caller arms again) and pushes the results it carried as a table (or
    /// nil). Stack: [-0, +1] when true.
    func take(_ s: LuaStack, seconds: Double) throws -> Bool {
        guard armed else { s.pushNil(); return true }
        var p = pollfd(fd: stable, events: Int16(POLLIN), revents: 0)
        let ms = Int32(max(0, min(seconds, 3600)) * 1000)
        guard poll(&p, 1, ms) > 0 else { return false }
        let (arrived, r) = conn.reply()
        guard arrived else { return false }
        armed = false
        guard let reply = r else { s.pushNil(); return true }
        defer { freeReplyObject(reply) }
        if reply.pointee.type == REDIS_REPLY_ARRAY, reply.pointee.elements == 2, let e = reply.pointee.element[1] {
            try RedisConnection.push(s, e)
        } else {
            s.pushNil()
        }
        return true
    }
}

/// A remote pool's job seen as a future. The Lua job table (held by a registry reference) keeps
/// the outcome and does the work through its metatable's methods `service()`, `outcome()`,
/// `exception()`, `cancel(force)`; the Lua layer reports `started`/`settled` through the handle.
final class RemoteFuture: MPFuture {
    let hooks = FutureHooks()
    private let job: Int32
    private let notifier: RedisNotifier
    /// Where `job` and error references are freed (the runtime that made the future).
    private let garbage: RegistryGarbage
    fileprivate var done = false, running = false, failed = false

    init(job: Int32, notifier: RedisNotifier, garbage: RegistryGarbage) {
        self.job = job
        self.notifier = notifier
        self.garbage = garbage
    }

    deinit { garbage.append(job) }

    var isDone: Bool { done }
    var isRunning: Bool { running && !done }
    var waitFailed: Bool { failed }
    func waitDescriptors() -> [Int32] { notifier.fd >= 0 ? [notifier.fd] : [] }

    func waitReady(_ s: LuaStack) throws -> Bool {
        try service(s)
        return done
    }

    func service(_ s: LuaStack) throws {
        let base = s.top
        _ = try call(s, "service", nresults: 0)
        s.top = base
    }

    func pushResults(_ s: LuaStack) throws -> Int32 { try call(s, "outcome", nresults: LUA_MULTRET) }

    func pushException(_ s: LuaStack) {
        let base = s.top
        if (try? call(s, "exception", nresults: 1)) == nil { s.top = base; s.pushNil() }
    }

    func cancel(_ s: LuaStack, force: Bool) throws -> Bool {
        let base = s.top
        _ = try call(s, "cancel", args: [force], nresults: 1)
        let ok = lua_toboolean(s.L, -1) != 0
        s.top = base
        return ok
    }

    /// Calls `job:method(args...)` under pcall; returns how many values it left. A Lua error is
    /// thrown as that value (`HostWaitRegistryError`), so the mp call that asked raises it.
    private func call(_ s: LuaStack, _ method: String, args: [Bool] = [], nresults: Int32) throws -> Int32 {
        let base = s.top
        guard lua_checkstack(s.L, Int32(4 + args.count)) != 0 else { throw LuaError.memory("not enough memory") }
        _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(job))
        guard lua_getmetatable(s.L, -1) != 0, s.rawGet(-1, field: method) == .function else {
            s.top = base
            throw MPError("TypeError", "not a remote pool's job")
        }
        lua_rotate(s.L, base + 1, 1)      // method, job, metatable
        s.pop()
        for a in args { s.push(a) }
        if luamp_pcall(s.L, Int32(1 + args.count), nresults, 0) != LUA_OK {
            let e = luaL_ref(s.L, s.registryIndex())
            s.top = base
            garbage.append(e)
            throw HostWaitRegistryError(ref: e)
        }
        return s.top - base
    }
}

/// What the Lua job holds to report its state: a weak reference (the future owns the job).
final class RemoteFutureHandle {
    weak var future: RemoteFuture?
    init(_ f: RemoteFuture) { future = f }
}

extension MPModule {
    static let notifierMeta = "mp.RedisNotifier"
    static let futureHandleMeta = "mp.RemoteFutureHandle"

    /// Adds the futures' natives to the cluster's native table at `t`: `notifier(address, timeout,
    /// retry, key)`, `future(job, notifier) -> AsyncResult, handle`, `started(handle)`,
    /// `settled(handle, failed, cancelled)`.
    static func addRemoteFutureNatives(_ s: LuaStack, _ t: Int32) {
        let t = s.absIndex(t)
        boxMetatable(s, notifierMeta, RedisNotifier.self, [
            // wire:take(seconds) → fired, results (ClusterSourceQueue.swift's C.take)
            ("take", { s in
                let n = try notifier(s)
                s.top = 2
                guard try n.take(s, seconds: s.toNumber(2) ?? 0) else { s.push(false); return 1 }
                s.push(true)
                lua_rotate(s.L, -2, 1)
                return 2
            }),
            ("arm", { s in try notifier(s).arm(); return 0 }),
        ])
        boxMetatable(s, futureHandleMeta, RemoteFutureHandle.self)
        // notifier(address, timeout, retry, key, service): also registers `service(callbacks)` as
        // a HostWait service of this process (every host wait runs it, polling the notifier's fd).
        s.setFunction(t, "notifier") { s in
            guard let url = s.toString(1), let key = s.toString(4) else { throw LuaArgumentError(1, "address and key expected") }
            guard s.type(at: 5) == .function else { throw LuaArgumentError(5, "function expected") }
            let c = RedisConnection(try RedisAddress(parsing: url), timeout: s.toNumber(2) ?? 10, retry: s.toNumber(3) ?? 5)
            let n = RedisNotifier(c, key: key)
            s.pushValue(5)
            let fn = luaL_ref(s.L, s.registryIndex())
            _ = HostWait.addService(s, name: "cluster \(c.address.display)",
                                    fds: { [weak n] in n.map { $0.fd >= 0 ? [$0.fd] : [] } ?? [] },
                                    run: { s in try runService(s, fn) })
            PoolBox.push(s, n, meta: notifierMeta, uservalues: 0)
            return 1
        }
        s.setFunction(t, "future") { s in
            guard s.type(at: 1) == .table else { throw LuaArgumentError(1, "job table expected") }
            let n = try notifier(s, 2)
            s.pushValue(1)
            let f = RemoteFuture(job: luaL_ref(s.L, s.registryIndex()), notifier: n, garbage: RuntimeState.of(s).garbage)
            pushAsyncResult(s, f, keepAlive: 0)
            PoolBox.push(s, RemoteFutureHandle(f), meta: futureHandleMeta, uservalues: 0)
            return 2
        }
        s.setFunction(t, "started") { s in
            handle(s)?.running = true
            return 0
        }
        s.setFunction(t, "settled") { s in
            guard let f = handle(s), !f.done else { return 0 }
            f.done = true
            f.failed = lua_toboolean(s.L, 2) != 0
            if lua_toboolean(s.L, 3) != 0 { f.hooks.cancelled = true }
            f.hooks.completed(f)
            return 0
        }
    }

    /// Runs a remote address's service function: its pools' non-blocking progress.
    private static func runService(_ s: LuaStack, _ fn: Int32) throws {
        let base = s.top
        guard lua_checkstack(s.L, 3) != 0 else { throw LuaError.memory("not enough memory") }
        _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(fn))
        s.push(RuntimeState.of(s).waits.serviceCallbacks)
        if luamp_pcall(s.L, 1, 0, 0) != LUA_OK {
            let e = luaL_ref(s.L, s.registryIndex())
            s.top = base
            RuntimeState.of(s).garbage.append(e)
            throw HostWaitRegistryError(ref: e)
        }
        s.top = base
    }

    private static func notifier(_ s: LuaStack, _ i: Int32 = 1) throws -> RedisNotifier {
        guard let n = PoolBox.get(s, i, meta: notifierMeta, as: RedisNotifier.self) else {
            throw LuaArgumentError(i, "notifier expected, got \(s.typeName(at: i))")
        }
        return n
    }

    private static func handle(_ s: LuaStack) -> RemoteFuture? {
        PoolBox.get(s, 1, meta: futureHandleMeta, as: RemoteFutureHandle.self)?.future
    }
}
