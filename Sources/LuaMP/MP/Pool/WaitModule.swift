// mp.wait and mp.as_completed: waiting on futures, processes, pipe ends, queues and events together.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// A waitable whose readiness is a Lua predicate on the object (`p.exitcode ~= nil`,
/// `c:poll(0)`, `not q:empty()`, `e:is_set()`), run under pcall.
final class PredicateWaitable: MPWaitable {
    let objectRef: Int32
    /// The predicate's key in the registry (each runtime has its own).
    let predicateKey: String
    let fds: [Int32]
    /// Where `objectRef` is freed (the runtime that made it).
    let garbage: RegistryGarbage

    init(objectRef: Int32, predicateKey: String, fds: [Int32], garbage: RegistryGarbage) {
        self.garbage = garbage
        self.objectRef = objectRef
        self.predicateKey = predicateKey
        self.fds = fds
    }
    deinit { garbage.append(objectRef) }

    func waitReady(_ s: LuaStack) throws -> Bool {
        let base = s.top
        defer { s.top = base }
        s.rawGet(s.registryIndex(), field: predicateKey)
        _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(objectRef))
        if luamp_pcall(s.L, 1, 1, 0) != LUA_OK {
            let r = luaL_ref(s.L, s.registryIndex())
            garbage.append(r)
            throw HostWaitRegistryError(ref: r)
        }
        return lua_toboolean(s.L, -1) != 0
    }
    func waitDescriptors() -> [Int32] { fds }
    var waitFailed: Bool { false }
}

extension MPModule {
    static func installWaiting(_ s: LuaStack, _ t: Int32) {
        let kinds: [(String, String)] = [
            ("Process", "return function(o) return o.exitcode ~= nil end"),
            ("mp.Connection", "return function(o) return o:poll(0) end"),
            ("mp.Queue", "return function(o) return not o:empty() end"),
            ("mp.SimpleQueue", "return function(o) return not o:empty() end"),
            ("mp.JoinableQueue", "return function(o) return not o:empty() end"),
            ("mp.Event", "return function(o) return o:is_set() end"),
        ]
        for (name, source) in kinds {
            guard (try? s.load(source, name: "=mp.wait")) != nil else { continue }
            guard luamp_pcall(s.L, 0, 1, 0) == LUA_OK else { s.pop(); continue }
            let key = "mp.wait." + name
            s.rawSet(s.registryIndex(), field: key)
            Waitables.register(metatable: name) { s, i in
                s.pushValue(i)
                let obj = luaL_ref(s.L, s.registryIndex())
                return PredicateWaitable(objectRef: obj, predicateKey: key, fds: [], garbage: RuntimeState.of(s).garbage)
            }
        }
        s.setPoolFunction(t, "wait") { s in try waitCall(s) }
        s.setPoolFunction(t, "as_completed") { s in try asCompletedCall(s) }
    }

    /// The waitables of the list at `i` (every item must be one).
    private static func waitList(_ s: LuaStack, _ i: Int32, _ fname: String) throws -> [MPWaitable] {
        guard s.type(at: i) == .table else { throw LuaArgumentError(i, "table expected, got \(s.typeName(at: i))") }
        let n = listLength(s, i)
        var out: [MPWaitable] = []
        out.reserveCapacity(n)
        for k in 0..<n {
            s.rawGet(i, index: Int64(k + 1))
            defer { s.pop() }
            // An AsyncResult (the usual item) is known by its metatable at once, without the
            // by-name lookup every other kind goes through.
            if let f = toFuture(s, s.top) { out.append(f); continue }
            guard let w = try Waitables.waitable(s, s.top) else {
                throw LuaArgumentError(i, "item \(k + 1) is a \(s.typeName(at: -1)) that cannot be waited for "
                    + "(futures, processes, pipe ends, queues and events can)")
            }
            out.append(w)
        }
        return out
    }

    /// How to wait on a set of waitables: in one pool's pump when all are tasks of that pool
    /// (it reads only that pool), else in `HostWait.wait` on their descriptors.
    struct WaitPlan {
        var pool: PoolState?
        var fds: [Int32] = []
        var short = false

        init(_ items: [MPWaitable]) {
            if let first = items.first as? PoolJob, items.allSatisfy({ ($0 as? PoolJob)?.pool === first.pool }) {
                pool = first.pool
                return
            }
            for w in items where !(w is PoolJob) {
                let d = w.waitDescriptors()
                if d.isEmpty { short = true }
                fds += d
            }
        }

        /// Waits until `ready()` or the deadline. Returns `ready()`.
        func wait(_ s: LuaStack, deadline: Deadline, label: String, ready: () throws -> Bool) throws -> Bool {
            if try ready() { return true }
            guard let p = pool, p.phase != .terminated else {
                return try HostWait.wait(s, label: label, deadline: deadline, fds: fds, short: short, ready: ready)
            }
            HostWait.began(s, label)
            defer { HostWait.ended(s, label) }
            let timeout = deadline.isNever ? nil : Double(deadline.remaining) / 1e9
            var failure: Error?
            let ok = try p.pump(s, timeout: timeout) {
                do { return try ready() } catch { failure = error; return true }
            }
            if let f = failure { throw f }
            try HostWait.runDueCallbacks(s)
            return ok
        }
    }

    /// `mp.wait(list [, timeout [, return_when]])` → `done, not_done` (two lists, in list order).
    private static func waitCall(_ s: LuaStack) throws -> Int32 {
        let items = try waitList(s, 1, "wait")
        let timeout = try optTimeout(s, 2)
        var mode = "FIRST_COMPLETED"
        if !s.isNoneOrNil(3) {
            guard s.type(at: 3) == .string, let m = s.toString(3),
                  ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"].contains(m) else {
                throw LuaArgumentError(3, "return_when must be \"FIRST_COMPLETED\", \"FIRST_EXCEPTION\" or \"ALL_COMPLETED\"")
            }
            mode = m
        }
        var done = [Bool](repeating: false, count: items.count)
        func check() throws -> Bool {
            var any = false, all = true, failed = false
            for (k, w) in items.enumerated() {
                if !done[k] { done[k] = try w.waitReady(s) }
                if done[k] { any = true; if w.waitFailed { failed = true } } else { all = false }
            }
            switch mode {
            case "ALL_COMPLETED": return all
            case "FIRST_EXCEPTION": return all || failed
            default: return any || items.isEmpty
            }
        }
        try HostWait.runServices(s)
        _ = try WaitPlan(items).wait(s, deadline: Deadline(seconds: timeout), label: "mp.wait", ready: check)
        // A future that `check` itself saw complete (its own service read the result) queued its
        // done-callbacks after the wait's last service round: they run before mp.wait returns.
        try HostWait.runDueCallbacks(s)
        s.newTable()
        s.newTable()
        var nd: Int64 = 0, nn: Int64 = 0
        for k in 0..<items.count {
            s.rawGet(1, index: Int64(k + 1))
            if done[k] { nd += 1; s.rawSet(-3, index: nd) } else { nn += 1; s.rawSet(-2, index: nn) }
        }
        return 2
    }

    /// `mp.as_completed(list [, timeout])`: an iterator giving each item (and its index) as it
    /// completes; raises `TimeoutError` when the timeout (counted from this call) passes first.
    private static func asCompletedCall(_ s: LuaStack) throws -> Int32 {
        let items = try waitList(s, 1, "as_completed")
        let timeout = try optTimeout(s, 2)
        let deadline = Deadline(seconds: timeout)
        let watcher = CompletionWatcher()
        var given = [Bool](repeating: false, count: items.count)
        var left = items.count
        var others: [Int] = []                          // items that are not futures: scanned
        try HostWait.runServices(s)
        for (k, w) in items.enumerated() {
            if let f = w as? MPFuture {
                if f.isDone { watcher.append(k) } else { f.hooks.watchers.append((watcher, k)) }
            } else {
                others.append(k)
            }
        }
        let plan = WaitPlan(items)
        s.pushValue(1)
        s.pushPoolFunction(name: "as_completed", upvalues: 1) { s in
            func next() throws -> Int? {
                while let k = watcher.popFirst() { if !given[k] { return k } }
                for k in others where !given[k] { if try items[k].waitReady(s) { return k } }
                return nil
            }
            guard left > 0 else { return 0 }
            var k = try next()
            if k == nil {
                let ok = try plan.wait(s, deadline: deadline, label: "mp.as_completed") {
                    if !watcher.isEmpty { return true }
                    for k in others where !given[k] { if try items[k].waitReady(s) { return true } }
                    return false
                }
                if ok { try HostWait.runDueCallbacks(s); k = try next() }
            }
            guard let i = k else {
                throw MPError("TimeoutError", "\(left) of \(items.count) results were not ready within \(timeout ?? 0) s",
                              [("timeout", .number(timeout ?? 0))])
            }
            given[i] = true
            left -= 1
            s.rawGet(s.upvalueIndex(2), index: Int64(i + 1))
            s.push(Int64(i + 1))
            return 2
        }
        return 1
    }
}
