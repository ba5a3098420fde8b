// imap / imap_unordered: lazy input, bounded look-ahead, and the iterator a generic `for` calls and closes.
internal import CLua
internal import LuaMPShims

extension MPModule {
    static let poolIteratorMeta = "mp.PoolIterator"

    /// `pool:imap(fn, iterable [, chunksize=1])` / `pool:imap_unordered(...)`: returns
    /// `it, nil, nil, it` so `for v, i in pool:imap(...)` works and `break` closes the
    /// iterator (its `__close` cancels the rest: unsent input is never read). Each call of
    /// `it` returns the next result and its 1-based input position, or nothing at the end.
    /// `iterable` is a list or a function called with no arguments until it returns nil.
    static func imapCall(_ s: LuaStack, ordered: Bool) throws -> Int32 {
        let p = try checkPool(s)
        guard p.phase == .running else { throw LuaRaise(p.phase == .closed ? "the pool is closed (no new tasks after close())" : "the pool was terminated") }
        guard s.type(at: 2) == .function else { throw LuaArgumentError(2, "function expected, got \(s.typeName(at: 2))") }
        let kind: ChunkSource.Kind
        switch s.type(at: 3) {
        case .table: kind = .list
        case .function: kind = .iterator
        default: throw LuaArgumentError(3, "table or iterator function expected, got \(s.typeName(at: 3))")
        }
        var size = 1
        var o = TaskOptions(pool: p)
        try o.read(s, 4, allowChunksize: true, allowCallbacks: false)
        if let c = o.chunksize { size = min(c, maxChunk) }
        if !s.isNoneOrNil(4) && s.type(at: 4) != .table {
            guard s.type(at: 4) == .number, let v = s.toInteger(4), v >= 1 else {
                throw LuaArgumentError(4, "chunksize must be a positive integer")
            }
            size = min(Int(v), maxChunk)
        }
        let count = kind == .list ? listLength(s, 3) : 0
        let entry = try p.functions.entry(s, at: 2)
        let job = PoolJob(kind: ordered ? .imap : .imapUnordered, pool: p, function: entry, mode: UInt8(LUAMP_POOL_MAP))
        o.apply(to: job)
        if kind == .list { job.itemsTotal = count }
        p.attachProgress(s, job, o.progress, label: ordered ? "imap" : "imap_unordered")
        let reg = s.registryIndex()
        s.newTable()
        job.resultsRef = luaL_ref(s.L, reg)
        s.pushValue(3)
        job.source = ChunkSource(kind: kind, ref: luaL_ref(s.L, reg), size: size, count: count, garbage: job.pool.garbage)
        if kind == .list && count == 0 { job.source = nil }
        p.enqueue(job)
        p.completeIfDone(job)
        PoolBox.push(s, job, meta: poolIteratorMeta, uservalues: 1)
        s.pushValue(1)
        lua_setiuservalue(s.L, -2, 1)
        let it = s.top
        s.pushNil()
        s.pushNil()
        s.pushValue(it)
        try p.pump(s, timeout: 0, pulling: job, callbacks: false) { false }
        return 4
    }

    /// Pushes the next result and its position (returns 2), or returns 0 at the end.
    private static func iteratorNext(_ s: LuaStack, _ job: PoolJob) throws -> Int32 {
        while true {
            if job.terminated { throw LuaRaise("the pool was terminated before this task finished") }
            if job.cancelled { return 0 }
            if job.current == nil {
                let next: ChunkOutcome? = job.kind == .imap ? job.outcomes.removeValue(forKey: job.chunksConsumed) : job.arrivals.popFirst()
                if let o = next {
                    job.chunksConsumed += 1
                    if let e = o.error {
                        switch e {
                        case .mp(let m): throw m
                        case .value(let r):
                            job.pool.garbage.append(r)   // freed at the next pump, after the raise
                            throw RegistryValueError(ref: r)
                        }
                    }
                    if o.count > 0 {
                        job.current = o
                        job.currentNext = 0
                    }
                    continue
                }
            }
            if let o = job.current {
                let position = o.position + job.currentNext
                job.currentNext += 1
                if job.currentNext >= o.count { job.current = nil }
                if let e = job.itemErrors.removeValue(forKey: position) {   // raised here, resumable
                    switch e {
                    case .mp(let m): throw m
                    case .value(let r):
                        job.pool.garbage.append(r)
                        throw RegistryValueError(ref: r)
                    }
                }
                _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(job.resultsRef))
                let buf = s.top
                _ = lua_rawgeti(s.L, buf, lua_Integer(position))
                s.pushNil()
                lua_rawseti(s.L, buf, lua_Integer(position))
                s.remove(buf)
                s.push(Int64(position))
                return 2
            }
            if job.source == nil && job.chunksConsumed == job.chunksMade {
                // The last outcomes may have been read by the background service, which draws
                // nothing: the bar's final line is drawn here, where the iteration ends.
                if job.progress != nil { try ProgressBoard.redraw(s, job.pool.runtime) }
                return 0
            }
            try job.pool.pump(s, timeout: nil, pulling: job, interruptible: job) {
                job.terminated || (job.kind == .imap ? job.outcomes[job.chunksConsumed] != nil : !job.arrivals.isEmpty)
                    || (job.source == nil && job.chunksConsumed == job.chunksMade)
            }
        }
    }

    /// Stops an imap early: no more input is read, unsent chunks are dropped, late results ignored.
    private static func cancel(_ job: PoolJob) {
        guard !job.cancelled else { return }
        job.cancelled = true
        job.source = nil
        for (_, o) in job.outcomes { if case .value(let r)? = o.error { job.pool.garbage.append(r) } }
        while let o = job.arrivals.popFirst() { if case .value(let r)? = o.error { job.pool.garbage.append(r) } }
        job.outcomes.removeAll()
        job.current = nil
        if job.chunksDone == job.chunksMade {
            job.done = true
            job.pool.jobs.remove(job)
        }
    }

    static func makePoolIteratorMetatable(_ s: LuaStack) {
        guard luaL_newmetatable(s.L, poolIteratorMeta) != 0 else { return }
        let mt = s.top
        s.push("PoolIterator"); s.rawSet(mt, field: "__name")
        s.setPoolFunction(mt, "__call") { s in
            guard let job = PoolBox.get(s, 1, meta: poolIteratorMeta, as: PoolJob.self) else {
                throw LuaArgumentError(1, "PoolIterator expected, got \(s.typeName(at: 1))")
            }
            try job.pool.checkOwner()
            return try iteratorNext(s, job)
        }
        // `<PoolIterator imap running=2 ready=1 taken=3>` (tasks, i.e. chunks: still running in the
        // workers, arrived and not yet taken, taken), `… done>` once everything was taken,
        // `… closed>` after break or close, `… terminated>` with its pool.
        s.setPoolFunction(mt, "__tostring") { s in
            guard let j = PoolBox.get(s, 1, meta: poolIteratorMeta, as: PoolJob.self) else { s.push("<PoolIterator>"); return 1 }
            let name = j.kind == .imap ? "imap" : "imap_unordered"
            let state: String
            if j.terminated {
                state = "terminated"
            } else if j.cancelled {
                state = "closed"
            } else if j.source == nil && j.chunksConsumed == j.chunksMade && j.current == nil {
                state = "done"
            } else {
                let ready = j.chunksDone - j.chunksConsumed
                state = "running=\(j.chunksMade - j.chunksDone) ready=\(ready) taken=\(j.chunksConsumed)"
            }
            s.push("<PoolIterator \(name) \(state)>")
            return 1
        }
        s.setPoolFunction(mt, "__close") { s in
            if let job = PoolBox.get(s, 1, meta: poolIteratorMeta, as: PoolJob.self), job.pool.isOwnedHere { cancel(job) }
            return 0
        }
        s.setPoolFunction(mt, "__gc") { s in
            if let job = PoolBox.take(s, 1, as: PoolJob.self), job.pool.isOwnedHere { cancel(job) }
            return 0
        }
    }
}
