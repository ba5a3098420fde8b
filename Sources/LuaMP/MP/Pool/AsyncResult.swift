// AsyncResult: the future apply_async/map_async/submit return (any MPFuture) — get/result, exception, wait, ready/done, cancel, done-callbacks.
internal import CLua
internal import LuaMPShims

/// The box an AsyncResult userdata holds (the future may be any `MPFuture`).
final class FutureBox {
    let future: MPFuture
    init(_ f: MPFuture) { future = f }
}

extension MPModule {
    static let asyncResultMeta = "mp.AsyncResult"

    /// Pushes an AsyncResult for `future`; its user value keeps the value at `keepAlive` (the
    /// pool userdata; 0: nothing) alive while the result is referenced. Stack: [-0, +1].
    static func pushAsyncResult(_ s: LuaStack, _ future: MPFuture, keepAlive: Int32) {
        let k = keepAlive == 0 ? 0 : s.absIndex(keepAlive)
        PoolBox.push(s, FutureBox(future), meta: asyncResultMeta, uservalues: 1)
        if k != 0 {
            s.pushValue(k)
            lua_setiuservalue(s.L, -2, 1)
        }
    }

    /// The future of the AsyncResult at `i`, or nil.
    static func toFuture(_ s: LuaStack, _ i: Int32) -> MPFuture? {
        PoolBox.get(s, i, meta: asyncResultMeta, as: FutureBox.self)?.future
    }

    private static func checkResult(_ s: LuaStack) throws -> MPFuture {
        guard let f = toFuture(s, 1) else {
            throw LuaArgumentError(1, "AsyncResult expected, got \(s.typeName(at: 1))")
        }
        if let j = f as? PoolJob { try j.pool.checkOwner() }
        return f
    }

    /// A timeout argument: nil (wait forever) or a non-negative number of seconds.
    static func optTimeout(_ s: LuaStack, _ i: Int32) throws -> Double? {
        guard let t = try s.optNumber(i) else { return nil }
        guard !t.isNaN else { throw LuaArgumentError(i, "timeout is NaN") }
        return max(0, t)
    }

    /// Waits up to `timeout` for `f`; returns whether it is done. A pool task waits in its
    /// pool's pump (which reads only that pool); any other future in `HostWait.wait`.
    static func waitFuture(_ s: LuaStack, _ f: MPFuture, timeout: Double?, label: String) throws -> Bool {
        if let job = f as? PoolJob {
            HostWait.began(s, label)
            defer { HostWait.ended(s, label) }
            let ok = try job.pool.pump(s, timeout: timeout, interruptible: job) { job.done }
            try HostWait.runDueCallbacks(s)
            return ok
        }
        try f.service(s)
        if f.isDone { try HostWait.runDueCallbacks(s); return true }
        let fds = f.waitDescriptors()
        let ok = try HostWait.wait(s, label: label, deadline: Deadline(seconds: timeout), fds: fds, short: fds.isEmpty) {
            try f.service(s)
            return f.isDone
        }
        if ok { try HostWait.runDueCallbacks(s) }   // those its completion queued (add_done_callback)
        return ok
    }

    /// Non-blocking progress for `f`, then due callbacks.
    static func serviceFuture(_ s: LuaStack, _ f: MPFuture) throws {
        if let job = f as? PoolJob {
            try job.pool.pump(s, timeout: 0) { job.done }
        } else {
            try f.service(s)
        }
        try HostWait.runDueCallbacks(s)
    }

    static func makeAsyncResultMetatable(_ s: LuaStack) {
        guard luaL_newmetatable(s.L, asyncResultMeta) != 0 else { return }
        let mt = s.top
        s.push("AsyncResult"); s.rawSet(mt, field: "__name")
        s.newTable()
        let m = s.top
        let get: SwiftFunction = { s in
            let f = try checkResult(s)
            let timeout = try optTimeout(s, 2)
            guard try waitFuture(s, f, timeout: timeout, label: "AsyncResult.get") else {
                throw MPError("TimeoutError", "the result was not ready within \(timeout ?? 0) s", [("timeout", .number(timeout ?? 0))])
            }
            return try f.pushResults(s)
        }
        s.setPoolFunction(m, "get", get)
        s.setPoolFunction(m, "result", get)
        s.setPoolFunction(m, "exception") { s in
            let f = try checkResult(s)
            let timeout = try optTimeout(s, 2)
            guard try waitFuture(s, f, timeout: timeout, label: "AsyncResult.exception") else {
                throw MPError("TimeoutError", "the result was not ready within \(timeout ?? 0) s", [("timeout", .number(timeout ?? 0))])
            }
            f.pushException(s)
            return 1
        }
        s.setPoolFunction(m, "wait") { s in
            let f = try checkResult(s)
            s.push(try waitFuture(s, f, timeout: try optTimeout(s, 2), label: "AsyncResult.wait"))
            return 1
        }
        let ready: SwiftFunction = { s in
            let f = try checkResult(s)
            try serviceFuture(s, f)
            s.push(f.isDone)
            return 1
        }
        s.setPoolFunction(m, "ready", ready)
        s.setPoolFunction(m, "done", ready)
        s.setPoolFunction(m, "running") { s in
            let f = try checkResult(s)
            try serviceFuture(s, f)
            s.push(f.isRunning)
            return 1
        }
        s.setPoolFunction(m, "cancelled") { s in
            let f = try checkResult(s)
            s.push(f.hooks.cancelled)
            return 1
        }
        s.setPoolFunction(m, "cancel") { s in
            let f = try checkResult(s)
            var force = false
            if s.type(at: 2) == .table {
                s.rawGet(2, field: "force")
                force = lua_toboolean(s.L, -1) != 0
                s.pop()
            } else if !s.isNoneOrNil(2) {
                throw LuaArgumentError(2, "options table expected, got \(s.typeName(at: 2))")
            }
            try serviceFuture(s, f)
            let ok = f.isDone ? false : try f.cancel(s, force: force)
            s.push(ok)
            if ok { try HostWait.runDueCallbacks(s) }
            return 1
        }
        s.setPoolFunction(m, "add_done_callback") { s in
            let f = try checkResult(s)
            guard s.type(at: 2) == .function else {
                throw LuaArgumentError(2, "function expected, got \(s.typeName(at: 2))")
            }
            s.pushValue(2)
            let fn = luaL_ref(s.L, s.registryIndex())
            s.pushValue(1)
            let r = luaL_ref(s.L, s.registryIndex())
            f.hooks.addDoneCallback(s, (fn, r))
            try serviceFuture(s, f)
            if f.isDone {
                f.hooks.completed(f)
                try HostWait.runDueCallbacks(s)
            }
            return 0
        }
        s.setPoolFunction(m, "successful") { s in
            let f = try checkResult(s)
            try serviceFuture(s, f)
            guard f.isDone else {
                throw LuaRaise("the result is not ready (successful() needs a finished task)")
            }
            s.push(!f.waitFailed)
            return 1
        }
        s.rawSet(mt, field: "__index")
        s.setPoolFunction(mt, "__gc") { s in
            _ = PoolBox.take(s, 1, as: FutureBox.self)
            return 0
        }
        s.setPoolFunction(mt, "__tostring") { s in
            guard let f = toFuture(s, 1) else { s.push("<AsyncResult>"); return 1 }
            let state = !f.isDone ? (f.isRunning ? "running" : "pending")
                      : f.hooks.cancelled ? "cancelled" : f.waitFailed ? "failed" : "ready"
            s.push("<AsyncResult \(state)>")
            return 1
        }
        Waitables.register(metatable: "AsyncResult") { s, i in toFuture(s, i) }
    }
}
