// AsyncResult: what apply_async/map_async return — get, wait, ready, successful.
internal import CLua
internal import LuaMPShims

extension MPModule {
    static let asyncResultMeta = "mp.AsyncResult"

    /// Pushes an AsyncResult for `job`; its user value keeps the pool userdata (argument 1 of
    /// the submitting method) alive while the result is referenced. Stack: [-0, +1].
    static func pushAsyncResult(_ s: LuaStack, _ job: PoolJob) {
        PoolBox.push(s, job, meta: asyncResultMeta, uservalues: 1)
        s.pushValue(1)
        lua_setiuservalue(s.L, -2, 1)
    }

    private static func checkResult(_ s: LuaStack) throws -> PoolJob {
        guard let j = PoolBox.get(s, 1, meta: asyncResultMeta, as: PoolJob.self) else {
            throw LuaArgumentError(1, "AsyncResult expected, got \(s.typeName(at: 1))")
        }
        try j.pool.checkOwner()
        return j
    }

    /// A timeout argument: nil (wait forever) or a non-negative number of seconds.
    static func optTimeout(_ s: LuaStack, _ i: Int32) throws -> Double? {
        guard let t = try s.optNumber(i) else { return nil }
        guard !t.isNaN else { throw LuaArgumentError(i, "timeout is NaN") }
        return max(0, t)
    }

    static func makeAsyncResultMetatable(_ s: LuaStack) {
        guard luaL_newmetatable(s.L, asyncResultMeta) != 0 else { return }
        let mt = s.top
        s.push("AsyncResult"); s.rawSet(mt, field: "__name")
        s.newTable()
        let m = s.top
        s.setFunction(m, "get") { s in
            let job = try checkResult(s)
            let timeout = try optTimeout(s, 2)
            guard try job.pool.pump(s, timeout: timeout, until: { job.done }) else {
                throw MPError("TimeoutError", "the result was not ready within \(timeout ?? 0) s")
            }
            return try results(s, job)
        }
        s.setFunction(m, "wait") { s in
            let job = try checkResult(s)
            s.push(try job.pool.pump(s, timeout: try optTimeout(s, 2)) { job.done })
            return 1
        }
        s.setFunction(m, "ready") { s in
            let job = try checkResult(s)
            s.push(try job.pool.pump(s, timeout: 0) { job.done })
            return 1
        }
        s.setFunction(m, "successful") { s in
            let job = try checkResult(s)
            guard try job.pool.pump(s, timeout: 0, until: { job.done }) else {
                throw LuaRaise("the result is not ready (successful() needs a finished task)")
            }
            s.push(!job.terminated && job.firstError == nil)
            return 1
        }
        s.rawSet(mt, field: "__index")
        s.setFunction(mt, "__gc") { s in
            _ = PoolBox.take(s, 1, as: PoolJob.self)
            return 0
        }
        s.setFunction(mt, "__tostring") { s in
            guard let j = PoolBox.get(s, 1, meta: asyncResultMeta, as: PoolJob.self) else { s.push("<AsyncResult>"); return 1 }
            s.push("<AsyncResult \(j.done ? (j.firstError == nil && !j.terminated ? "ready" : "failed") : "pending")>")
            return 1
        }
    }
}
