// HostWait: the one loop in which the host waits for mp objects, the futures and waitables it understands, and the services it runs meanwhile.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// Anything `mp.wait` accepts: a future, a process, a pipe end, a queue, an event.
protocol MPWaitable: AnyObject {
    /// Non-blocking: true once ready. May make progress (read a pipe) but never blocks.
    func waitReady(_ s: LuaStack) throws -> Bool
    /// Descriptors worth polling (POLLIN) while it is not ready; [] when there are none (the
    /// wait then checks `waitReady` every `HostWait.shortSlice` ms).
    func waitDescriptors() -> [Int32]
    /// Asked once ready: it finished with an error (`FIRST_EXCEPTION`).
    var waitFailed: Bool { get }
}

/// What an `AsyncResult` wraps: a pool task, or a task of another kind of pool (remote pools
/// adopt this to return the same AsyncResult objects).
protocol MPFuture: MPWaitable {
    /// Done-callbacks and the cancelled flag; one `FutureHooks()` per future.
    var hooks: FutureHooks { get }
    /// Has an outcome: a result, an error, or cancelled.
    var isDone: Bool { get }
    /// Started and not done (as far as known without blocking).
    var isRunning: Bool { get }
    /// Non-blocking progress for the future's source.
    func service(_ s: LuaStack) throws
    /// Pushes what `get` returns and returns the count, or throws the task's error. Only when done.
    func pushResults(_ s: LuaStack) throws -> Int32
    /// Pushes the error value, or nil when it succeeded. Stack: [-0, +1]. Only when done.
    func pushException(_ s: LuaStack)
    /// True if the task will never run (it had not started); `force` also stops a running one,
    /// which then fails with `CancelledError`. Calls `hooks.completed(self)` when it ends it.
    func cancel(_ s: LuaStack, force: Bool) throws -> Bool
}

/// Bookkeeping shared by every future: callbacks registered with `add_done_callback`.
final class FutureHooks {
    /// Registry references: (callback, the AsyncResult userdata to call it with).
    private(set) var doneCallbacks: [(fn: Int32, result: Int32)] = []
    /// The runtime whose registry holds the callbacks (set with the first one).
    private var runtime: RuntimeState?
    var cancelled = false
    /// Queued on `HostWait.due` already.
    var queued = false
    /// `as_completed` iterators waiting for it, with its index in their lists.
    var watchers: [(CompletionWatcher, Int)] = []

    /// The future became done: watchers learn it now, its done-callbacks run at the next safe
    /// point. Never runs Lua. Owners call it once, when the future gets its outcome.
    func completed(_ f: MPFuture) {
        if !watchers.isEmpty {
            for (w, k) in watchers { w.append(k) }
            watchers.removeAll()
        }
        guard !doneCallbacks.isEmpty, !queued, let rt = runtime else { return }
        queued = true
        rt.waits.due.append(f)
    }

    /// Adds a done-callback of the runtime of `s` (registry references to the callback and to
    /// the AsyncResult userdata to call it with).
    func addDoneCallback(_ s: LuaStack, _ c: (fn: Int32, result: Int32)) {
        if runtime == nil { runtime = RuntimeState.of(s) }
        doneCallbacks.append(c)
    }

    /// The next callback to run, removed.
    fileprivate func takeDoneCallback() -> (fn: Int32, result: Int32) { doneCallbacks.removeFirst() }

    deinit {
        for (fn, r) in doneCallbacks { runtime?.garbage.append(contentsOf: [fn, r]) }
    }
}

/// Futures that completed since an `as_completed` iterator started watching, by list index.
final class CompletionWatcher {
    private var items: [Int] = []
    private var head = 0
    var isEmpty: Bool { head == items.count }
    func append(_ k: Int) { items.append(k) }
    func popFirst() -> Int? {
        guard head < items.count else { return nil }
        let k = items[head]
        head += 1
        if head == items.count { items.removeAll(keepingCapacity: true); head = 0 }
        return k
    }
}

/// Watches host waits (progress bars, trace spans). Must not raise nor call into a pool.
protocol HostWaitObserver: AnyObject {
    func waitBegan(_ s: LuaStack, label: String)
    /// At least every 100 ms while waiting.
    func waitTick(_ s: LuaStack)
    func waitEnded(_ s: LuaStack, label: String)
}

/// The wait state of one runtime (`RuntimeState.waits`): its services (its pools), observers
/// and futures whose done-callbacks are due. Never another runtime's: a service pumps its pool
/// with the stack of the runtime that created it.
final class HostWaitState {
    struct Service {
        let token: Int
        /// The process that registered it: forked children inherit the list, never run it.
        let owner: UInt32
        let name: String
        let fds: () -> [Int32]
        let run: (LuaStack) throws -> Void
    }
    private(set) var services: [Service] = []
    private(set) var observers: [(Int, HostWaitObserver)] = []
    private var nextToken = 1
    /// Futures done whose done-callbacks have not run yet.
    var due: [MPFuture] = []
    /// Whether the services running now may run Lua callbacks.
    var serviceCallbacks = true
    /// Host waits in progress (`HostWait.began` … `ended`): the pool pump records no span of
    /// its own inside one.
    private(set) var depth = 0

    func addService(name: String, fds: @escaping () -> [Int32], run: @escaping (LuaStack) throws -> Void) -> Int {
        let t = nextToken
        nextToken += 1
        services.append(Service(token: t, owner: CurrentProcess.pid, name: name, fds: fds, run: run))
        return t
    }
    func removeService(_ token: Int) { services.removeAll { $0.token == token } }

    func addObserver(_ o: HostWaitObserver) -> Int {
        let t = nextToken
        nextToken += 1
        observers.append((t, o))
        return t
    }
    func removeObserver(_ token: Int) { observers.removeAll { $0.0 == token } }

    /// True when this process registered a service here (a pool is alive here).
    var hasServices: Bool { services.contains { $0.owner == CurrentProcess.pid } }

    fileprivate func began(_ s: LuaStack, _ label: String) {
        depth += 1
        for (_, o) in observers { o.waitBegan(s, label: label) }
    }
    fileprivate func ended(_ s: LuaStack, _ label: String) {
        depth = max(0, depth - 1)
        for (_, o) in observers { o.waitEnded(s, label: label) }
    }
    fileprivate func tick(_ s: LuaStack) { for (_, o) in observers { o.waitTick(s) } }
}

/// The host's waiting: every blocking mp call that waits on futures or several objects goes
/// through `wait`, which polls their descriptors together with those of every *service* of its
/// runtime (pools: their result pipes and pidfds), runs the services each slice, and reports to
/// observers. Pool calls wait in `PoolState.pump`, which reports to the same observers.
enum HostWait {
    /// Slice (ms) used when something waited on has no descriptor.
    static let shortSlice: Int32 = 5

    /// Registers a service of the runtime of `s`; returns its token.
    static func addService(_ s: LuaStack, name: String, fds: @escaping () -> [Int32], run: @escaping (LuaStack) throws -> Void) -> Int {
        RuntimeState.of(s).waits.addService(name: name, fds: fds, run: run)
    }

    static func began(_ s: LuaStack, _ label: String) { RuntimeState.of(s).waits.began(s, label) }
    static func tick(_ s: LuaStack) { RuntimeState.of(s).waits.tick(s) }
    static func ended(_ s: LuaStack, _ label: String) { RuntimeState.of(s).waits.ended(s, label) }

    /// True when the runtime of `s` has a service in this process (a pool is alive there).
    static func hasServices(_ s: LuaStack) -> Bool { RuntimeState.of(s).waits.hasServices }

    /// Runs every service once (non-blocking progress), then due done-callbacks. Services never
    /// take Ctrl-C (the wait that runs them does). With `callbacks` false, no Lua callback runs.
    static func runServices(_ s: LuaStack, callbacks: Bool = true) throws {
        let w = RuntimeState.of(s).waits
        let me = CurrentProcess.pid
        let old = w.serviceCallbacks
        w.serviceCallbacks = callbacks
        defer { w.serviceCallbacks = old }
        for svc in w.services where svc.owner == me { try svc.run(s) }
        if callbacks { try runDueCallbacks(s) }
    }

    /// Runs the done-callbacks of futures that completed, each `fn(result)` under pcall; the
    /// first error is raised (the rest run at the next safe point).
    static func runDueCallbacks(_ s: LuaStack) throws {
        let rt = RuntimeState.of(s)
        rt.garbage.collect(s)
        let w = rt.waits
        while !w.due.isEmpty {
            let f = w.due.removeFirst()
            f.hooks.queued = false
            while !f.hooks.doneCallbacks.isEmpty {
                let (fn, r) = f.hooks.takeDoneCallback()
                let base = s.top
                _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(fn))
                _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(r))
                luaL_unref(s.L, s.registryIndex(), fn)
                luaL_unref(s.L, s.registryIndex(), r)
                if luamp_pcall(s.L, 1, 0, 0) != LUA_OK {
                    let e = luaL_ref(s.L, s.registryIndex())
                    s.top = base
                    if !f.hooks.doneCallbacks.isEmpty { f.hooks.queued = true; w.due.insert(f, at: 0) }
                    rt.garbage.append(e)
                    throw HostWaitRegistryError(ref: e)
                }
                s.top = base
            }
        }
    }

    /// Waits until `ready()` holds or `deadline` passes, in `Deadline.wait` (the one wait loop:
    /// slices of at most 100 ms, Ctrl-C between them). Each slice polls `fds` and every service's
    /// descriptors (sleeps at most `shortSlice` ms when `short`: something waited on has no
    /// descriptor), then runs the services and due callbacks and checks `ready()` again.
    /// Returns `ready()`.
    static func wait(_ s: LuaStack, label: String, deadline: Deadline, fds: [Int32], short: Bool,
                     callbacks: Bool = true, ready: () throws -> Bool) throws -> Bool {
        let w = RuntimeState.of(s).waits
        w.began(s, label)
        // It runs the pools itself: no service round from its own slices (luamp_service_poll).
        luamp_pool_call_enter()
        defer { luamp_pool_call_leave(); w.ended(s, label) }
        var polls: [pollfd] = []
        let me = CurrentProcess.pid
        let cap: UInt64 = short ? UInt64(shortSlice) * 1_000_000 : Deadline.slice
        var checked = false      // ready() was evaluated right after the last slice's services
        return try deadline.wait { slice in
            if !checked {
                try runServices(s, callbacks: callbacks)
                if try ready() { return true }
            }
            checked = false
            if slice == 0 { return false }
            let ns = min(slice, cap)
            polls.removeAll(keepingCapacity: true)
            for fd in fds where fd >= 0 { polls.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            for svc in w.services where svc.owner == me {
                for fd in svc.fds() where fd >= 0 { polls.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            }
            if polls.isEmpty {
                var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
                _ = nanosleep(&ts, nil)
            } else {
                _ = poll(&polls, nfds_t(polls.count), Deadline.pollMilliseconds(ns))
            }
            w.tick(s)
            try runServices(s, callbacks: callbacks)
            checked = true
            return try ready()
        }
    }
}

/// An error raised with the value a registry slot holds.
struct HostWaitRegistryError: LuaValueError {
    let ref: Int32
    func pushError(onto s: LuaStack) { _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(ref)) }
}

/// Lua values `mp.wait` understands, by the `__name` of their metatable.
enum Waitables {
    typealias Adapter = (LuaStack, Int32) throws -> MPWaitable?
    /// Guarded: runtimes on several threads of an embedding app install (and register) at once.
    private static let adapters = ForkSafeLock<[String: Adapter]>([:])

    static func register(metatable name: String, _ adapter: @escaping Adapter) {
        adapters.withLock { $0[name] = adapter }
    }

    /// The waitable for the value at `i`, or nil when its type is not one.
    static func waitable(_ s: LuaStack, _ i: Int32) throws -> MPWaitable? {
        guard s.type(at: i) == .userdata || s.type(at: i) == .table else { return nil }
        let name: String? = s.preservingTop {
            guard lua_getmetatable(s.L, i) != 0 else { return nil }
            guard s.rawGet(-1, field: "__name") == .string else { return nil }
            return s.toString(-1)
        }
        guard let n = name, let a = adapters.withLock({ $0[n] }) else { return nil }
        return try a(s, i)
    }
}
