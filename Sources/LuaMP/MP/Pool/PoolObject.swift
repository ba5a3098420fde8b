// The Lua `Pool` object: mp.Pool(...), its methods' arguments, and submission of map/apply/imap jobs.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// The pool's objects live in the one userdata box (Lua/UserdataBox.swift).
typealias PoolBox = UserdataBox

extension MPModule {
    static let poolMeta = "mp.Pool"

    /// Installs `mp.Pool`, and the AsyncResult and imap iterator metatables.
    static func installPools(_ s: LuaStack, _ t: Int32) {
        s.preservingTop {
            makePoolMetatable(s)
            makeAsyncResultMetatable(s)
            makePoolIteratorMetatable(s)
        }
        s.setPoolFunction(t, "Pool") { s in try newPool(s) }
        installWaiting(s, t)
        // Runs the lazy initializer here, once: left to the first pool, it would run in every
        // forked child and cost copy-on-write faults on each start.
        _ = PoolTrace.registered
    }

    static func checkPool(_ s: LuaStack, _ i: Int32 = 1) throws -> PoolState {
        guard let p = PoolBox.get(s, i, meta: poolMeta, as: PoolState.self) else {
            throw LuaArgumentError(i, "Pool expected, got \(s.typeName(at: i))")
        }
        try p.checkOwner()
        return p
    }

    /// A pool that still accepts work.
    private static func runningPool(_ s: LuaStack) throws -> PoolState {
        let p = try checkPool(s)
        switch p.phase {
        case .running: return p
        case .closed: throw LuaRaise("the pool is closed (no new tasks after close())")
        case .terminated: throw LuaRaise("the pool was terminated")
        }
    }

    // MARK: constructor

    /// `mp.Pool([processes [, initializer [, initargs [, maxtasksperchild]]]])` or
    /// `mp.Pool{processes =, initializer =, initargs =, maxtasksperchild =}`. Stack: [-0, +1].
    private static func newPool(_ s: LuaStack) throws -> Int32 {
        let table = s.type(at: 1) == .table
        if table {
            s.top = 1
            for key in ["processes", "initializer", "initargs", "maxtasksperchild", "task_timeout", "retries"] { s.rawGet(1, field: key) }
        }
        var observed = PoolObservation()
        if table {
            s.rawGet(1, field: "label_output"); observed.labelOutput = s.toBool(-1); s.pop()
            s.rawGet(1, field: "progress"); observed.progress = try ProgressSpec.read(s, s.top, what: "Pool"); s.pop()
        }
        let first: Int32 = table ? 2 : 1
        func arg(_ k: Int32) -> Int32 { first + k }
        func bad(_ k: Int32, _ field: String, _ msg: String) -> LuaArgumentError {
            table ? LuaArgumentError(1, "field '\(field)' \(msg)") : LuaArgumentError(k + 1, "\(field) \(msg)")
        }
        var size = Int(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        if !s.isNoneOrNil(arg(0)) {
            guard s.type(at: arg(0)) == .number, let v = s.toInteger(arg(0)) else {
                throw bad(0, "processes", "must be an integer, got \(s.typeName(at: arg(0)))")
            }
            guard v >= 1, v <= 4096 else { throw bad(0, "processes", "must be between 1 and 4096, got \(v)") }
            size = Int(v)
        }
        if !s.isNoneOrNil(arg(1)) && s.type(at: arg(1)) != .function {
            throw bad(1, "initializer", "must be a function, got \(s.typeName(at: arg(1)))")
        }
        if !s.isNoneOrNil(arg(2)) && s.type(at: arg(2)) != .table {
            throw bad(2, "initargs", "must be a table, got \(s.typeName(at: arg(2)))")
        }
        var maxTasks: Int?
        if !s.isNoneOrNil(arg(3)) {
            guard s.type(at: arg(3)) == .number, let v = s.toInteger(arg(3)), v >= 1 else {
                throw bad(3, "maxtasksperchild", "must be a positive integer")
            }
            maxTasks = Int(v)
        }
        let reg = s.registryIndex()
        var initRef = LUA_NOREF
        var initargsRef = LUA_NOREF
        if !s.isNoneOrNil(arg(1)) { s.pushValue(arg(1)); initRef = luaL_ref(s.L, reg) }
        if !s.isNoneOrNil(arg(2)) { s.pushValue(arg(2)); initargsRef = luaL_ref(s.L, reg) }
        let pool: PoolState
        do {
            pool = try PoolState(s, size: size, maxTasksPerChild: maxTasks, initializerRef: initRef, initargsRef: initargsRef,
                                 observed: observed)
        } catch {
            for r in [initRef, initargsRef] where r != LUA_NOREF { luaL_unref(s.L, reg, r) }
            throw error
        }
        if table {
            if !s.isNoneOrNil(6) {
                guard let t = s.toNumber(6), s.type(at: 6) == .number, t > 0 else {
                    pool.terminate(s)
                    throw LuaArgumentError(1, "field 'task_timeout' must be a positive number of seconds")
                }
                pool.defaultTimeoutMs = UInt32(clamping: Int((t * 1000).rounded(.up)))
            }
            if !s.isNoneOrNil(7) {
                guard let v = s.toInteger(7), s.type(at: 7) == .number, v >= 0 else {
                    pool.terminate(s)
                    throw LuaArgumentError(1, "field 'retries' must be a non-negative integer")
                }
                pool.defaultRetries = Int(v)
            }
        }
        pool.runtime.pools.add(s, pool)
        PoolBox.push(s, pool, meta: poolMeta, uservalues: 0)
        return 1
    }

    // MARK: metatable

    private static func makePoolMetatable(_ s: LuaStack) {
        guard let mt = s.newObjectMetatable(poolMeta, name: "Pool") else { return }
        let m = s.top
        s.setPoolFunction(m, "map") { s in try mapCall(s, star: false) }
        s.setPoolFunction(m, "starmap") { s in try mapCall(s, star: true) }
        s.setPoolFunction(m, "map_async") { s in try mapAsyncCall(s, star: false) }
        s.setPoolFunction(m, "starmap_async") { s in try mapAsyncCall(s, star: true) }
        s.setPoolFunction(m, "imap") { s in try imapCall(s, ordered: true) }
        s.setPoolFunction(m, "imap_unordered") { s in try imapCall(s, ordered: false) }
        s.setPoolFunction(m, "apply") { s in
            let p = try runningPool(s)
            var o = TaskOptions(pool: p)
            try o.read(s, 4, allowChunksize: false, allowCallbacks: false)
            let job = try submitApply(s, p, fn: 2, args: 3, options: o)
            HostWait.began(s, "pool.apply")
            defer { HostWait.ended(s, "pool.apply") }
            try p.pump(s, timeout: nil, interruptible: job) { job.done }
            return try results(s, job)
        }
        s.setPoolFunction(m, "apply_async") { s in
            let p = try runningPool(s)
            s.top = max(s.top, 5)
            var o = TaskOptions(pool: p)
            try o.read(s, 4, allowChunksize: false, allowCallbacks: true)
            let job = try submitApply(s, p, fn: 2, args: 3, options: o)
            try setCallbacks(s, job, o.callback != 0 ? o.callback : (s.type(at: 4) == .table ? 0 : 4), o.errorCallback != 0 ? o.errorCallback : 5)
            pushAsyncResult(s, job, keepAlive: 1)
            try p.pump(s, timeout: 0, callbacks: false) { false }
            return 1
        }
        s.setPoolFunction(m, "submit") { s in
            // pool:submit(fn, ...): apply_async(fn, {...}) in concurrent.futures' words.
            let p = try runningPool(s)
            try checkFunction(s, 2)
            let n = max(0, s.top - 2)
            guard n <= 250 else { throw LuaArgumentError(3, "too many arguments (\(n), at most 250)") }
            let job = try submitApply(s, p, fn: 2, first: 3, count: Int(n))   // encoded from the stack: no table
            pushAsyncResult(s, job, keepAlive: 1)
            try p.pump(s, timeout: 0, callbacks: false) { false }
            return 1
        }
        s.setPoolFunction(m, "close") { s in
            let p = try checkPool(s)
            p.closePool()
            try p.pump(s, timeout: 0) { false }
            return 0
        }
        s.setPoolFunction(m, "join") { s in try checkPool(s).join(s); return 0 }
        s.setPoolFunction(m, "terminate") { s in try checkPool(s).terminate(s); return 0 }
        s.rawSet(mt, field: "__index")
        s.setPoolFunction(mt, "__close") { s in
            if let p = PoolBox.get(s, 1, meta: poolMeta, as: PoolState.self) { p.terminate(s) }
            return 0
        }
        s.setPoolFunction(mt, "__gc") { s in
            if let p = PoolBox.take(s, 1, as: PoolState.self) {
                p.terminate(s)
                if p.isOwnedHere { p.releaseReferences(s) }
            }
            return 0
        }
        s.setPoolFunction(mt, "__tostring") { s in
            guard let p = PoolBox.get(s, 1, meta: poolMeta, as: PoolState.self) else { s.push("<Pool>"); return 1 }
            let state = p.phase == .running ? "RUN" : p.phase == .closed ? "CLOSE" : "TERMINATE"
            s.push("<Pool processes=\(p.size) state=\(state)>")
            return 1
        }
    }

    // MARK: submissions

    /// A task options table (`{chunksize =, timeout =, retries =, errors =, callback =,
    /// error_callback =}`); pool-wide defaults fill timeout and retries.
    struct TaskOptions {
        var chunksize: Int?
        var timeoutMs: UInt32 = 0
        var retries = 0
        var returnErrors = false
        var callback: Int32 = 0          // stack indices of callbacks given in the table
        var errorCallback: Int32 = 0
        /// `progress = true | label | function(done, total, failed)` (docs/observability.md).
        var progress: ProgressSpec?

        init(pool p: PoolState) {
            timeoutMs = p.defaultTimeoutMs
            retries = p.defaultRetries
        }

        /// Reads the table at `i` (nothing when it is not a table). Callbacks found are pushed
        /// on the stack and their indices kept. Stack: [-0, +k].
        mutating func read(_ s: LuaStack, _ i: Int32, allowChunksize: Bool, allowCallbacks: Bool) throws {
            guard s.type(at: i) == .table else { return }
            func field(_ name: String) -> LuaType { s.rawGet(i, field: name) }
            if field("chunksize") != .nil {
                guard allowChunksize, s.type(at: -1) == .number, let v = s.toInteger(-1), v >= 1 else {
                    throw LuaArgumentError(i, allowChunksize ? "field 'chunksize' must be a positive integer" : "unknown option 'chunksize'")
                }
                chunksize = Int(v)
            }
            s.pop()
            if field("timeout") != .nil {
                guard s.type(at: -1) == .number, let t = s.toNumber(-1), t > 0, !t.isNaN else {
                    throw LuaArgumentError(i, "field 'timeout' must be a positive number of seconds")
                }
                timeoutMs = UInt32(clamping: Int((t * 1000).rounded(.up)))
            }
            s.pop()
            if field("retries") != .nil {
                guard s.type(at: -1) == .number, let v = s.toInteger(-1), v >= 0 else {
                    throw LuaArgumentError(i, "field 'retries' must be a non-negative integer")
                }
                retries = Int(v)
            }
            s.pop()
            if field("errors") != .nil {
                guard s.type(at: -1) == .string, let v = s.toString(-1), v == "return" || v == "raise" else {
                    throw LuaArgumentError(i, "field 'errors' must be \"return\" or \"raise\"")
                }
                returnErrors = v == "return"
            }
            s.pop()
            _ = field("progress")
            progress = try ProgressSpec.read(s, s.top, what: "pool")
            s.pop()
            for name in ["callback", "error_callback"] {
                let t = field(name)
                if t == .nil { s.pop(); continue }
                guard allowCallbacks, t == .function else {
                    s.pop()
                    throw LuaArgumentError(i, allowCallbacks ? "field '\(name)' must be a function" : "unknown option '\(name)'")
                }
                if name == "callback" { callback = s.top } else { errorCallback = s.top }
            }
        }

        func apply(to job: PoolJob) {
            job.timeoutMs = timeoutMs
            job.retries = retries
            job.returnErrors = returnErrors
        }
    }

    private static func checkFunction(_ s: LuaStack, _ i: Int32) throws {
        guard s.type(at: i) == .function else {
            throw LuaArgumentError(i, "function expected, got \(s.typeName(at: i))")
        }
    }

    private static func optChunksize(_ s: LuaStack, _ i: Int32) throws -> Int? {
        guard !s.isNoneOrNil(i), s.type(at: i) != .table else { return nil }
        guard let v = s.toInteger(i), s.type(at: i) == .number, v >= 1 else {
            throw LuaArgumentError(i, "chunksize must be a positive integer")
        }
        return Int(v)
    }

    /// Replaces an iterator function at `i` by the list of everything it returns (map reads its
    /// whole input, as Python's does). Stack: [-0, +0] (the list replaces the function).
    private static func listify(_ s: LuaStack, _ i: Int32) throws {
        guard s.type(at: i) == .function else { return }
        s.newTable()
        let t = s.top
        var n: Int64 = 0
        while true {
            s.pushValue(i)
            if luamp_pcall(s.L, 0, 1, 0) != LUA_OK {
                throw RegistryValueError(ref: { let r = luaL_ref(s.L, s.registryIndex()); RuntimeState.of(s).garbage.append(r); return r }())
            }
            if s.type(at: -1) == .nil { s.pop(); break }
            n += 1
            s.rawSet(t, index: n)
        }
        s.push(n); s.rawSet(t, field: "n")
        s.replace(i)
    }

    /// Largest chunk: items travel as values on the Lua stack (LUAI_MAXSTACK is 1,000,000), so
    /// bigger chunksizes are split.
    static let maxChunk = 200_000

    /// Length of a list: its `n` field when it is a non-negative integer, else its border.
    static func listLength(_ s: LuaStack, _ i: Int32) -> Int {
        if s.rawGet(i, field: "n") == .number, let n = s.toInteger(-1), n >= 0 { s.pop(); return Int(n) }
        s.pop()
        return Int(s.rawLength(i))
    }

    /// Creates a map/starmap job over the list at `list` (an iterator function there is first
    /// read into a list, replacing it). The results table `{n = #items}` is created now and
    /// held by the job. Stack: [-0, +0].
    /// - Throws: argument errors; `SendError` when `fn` cannot be sent (items are checked as
    ///   their chunks are encoded and fail the job at their position).
    private static func submitMap(_ s: LuaStack, _ p: PoolState, fn: Int32, list: Int32, chunksize: Int32, star: Bool,
                                  options: TaskOptions) throws -> PoolJob {
        try checkFunction(s, fn)
        try listify(s, list)
        guard s.type(at: list) == .table else {
            throw LuaArgumentError(list, "table or iterator function expected, got \(s.typeName(at: list))")
        }
        let n = listLength(s, list)
        if star {
            for i in 0..<n {
                let t = s.rawGet(list, index: Int64(i + 1))
                s.pop()
                if t != .table { throw LuaArgumentError(list, "item \(i + 1) is a \(t.name), not a table of arguments") }
            }
        }
        var cs = try optChunksize(s, chunksize) ?? options.chunksize ?? 0
        if cs == 0 {
            let d = n / (4 * p.size), r = n % (4 * p.size)
            cs = max(1, d + (r > 0 ? 1 : 0))
        }
        cs = min(cs, maxChunk)
        let entry = try p.functions.entry(s, at: fn)
        let job = PoolJob(kind: .map, pool: p, function: entry, mode: UInt8(star ? LUAMP_POOL_STAR : LUAMP_POOL_MAP))
        options.apply(to: job)
        job.itemsTotal = n
        p.attachProgress(s, job, options.progress, label: star ? "starmap" : "map")
        let reg = s.registryIndex()
        s.newTable(arrayCount: Int32(clamping: n), hashCount: 1)
        s.push(Int64(n)); s.rawSet(-2, field: "n")
        job.resultsRef = luaL_ref(s.L, reg)
        if n > 0 {
            s.pushValue(list)
            job.source = ChunkSource(kind: .list, ref: luaL_ref(s.L, reg), size: cs, count: n, garbage: job.pool.garbage)
        }
        p.enqueue(job)
        p.completeIfDone(job)
        return job
    }

    /// `pool:map(fn, list [, chunksize])`, `pool:starmap(...)`: waits, returns the results list.
    private static func mapCall(_ s: LuaStack, star: Bool) throws -> Int32 {
        let p = try runningPool(s)
        var o = TaskOptions(pool: p)
        try o.read(s, 4, allowChunksize: true, allowCallbacks: false)
        let job = try submitMap(s, p, fn: 2, list: 3, chunksize: 4, star: star, options: o)
        let label = star ? "pool.starmap" : "pool.map"
        HostWait.began(s, label)
        defer { HostWait.ended(s, label) }
        try p.pump(s, timeout: nil, interruptible: job) { job.done }
        return try results(s, job)
    }

    /// `pool:map_async(fn, list [, chunksize [, callback [, error_callback]]])`.
    private static func mapAsyncCall(_ s: LuaStack, star: Bool) throws -> Int32 {
        let p = try runningPool(s)
        s.top = max(s.top, 6)
        var o = TaskOptions(pool: p)
        try o.read(s, 4, allowChunksize: true, allowCallbacks: true)
        let job = try submitMap(s, p, fn: 2, list: 3, chunksize: 4, star: star, options: o)
        try setCallbacks(s, job, o.callback != 0 ? o.callback : 5, o.errorCallback != 0 ? o.errorCallback : 6)
        pushAsyncResult(s, job, keepAlive: 1)
        try p.pump(s, timeout: 0, callbacks: false) { false }
        return 1
    }

    /// Creates an apply job: one chunk calling `fn(table.unpack(args, 1, args.n or #args))`.
    /// - Throws: SendError at once when the function or an argument cannot be sent.
    private static func submitApply(_ s: LuaStack, _ p: PoolState, fn: Int32, args: Int32, options: TaskOptions? = nil) throws -> PoolJob {
        try checkFunction(s, fn)
        if s.isNoneOrNil(args) {
            s.top = max(s.top, args)
            s.newTable()
            s.replace(args)
        }
        guard s.type(at: args) == .table else { throw LuaArgumentError(args, "table expected, got \(s.typeName(at: args))") }
        let n = listLength(s, args)
        guard n <= 250 else { throw LuaArgumentError(args, "too many arguments (\(n), at most 250)") }
        let first = s.top + 1
        s.checkStack(Int32(n) + 16)
        for i in 0..<n { s.rawGet(args, index: Int64(i + 1)) }
        return try submitApply(s, p, fn: fn, first: first, count: n, options: options)
    }

    /// Creates an apply job calling `fn` with the `count` values on the stack from `first`
    /// (popped with everything above them). The function is checked already.
    /// - Throws: SendError at once when the function or an argument cannot be sent.
    private static func submitApply(_ s: LuaStack, _ p: PoolState, fn: Int32, first: Int32, count n: Int,
                                    options: TaskOptions? = nil) throws -> PoolJob {
        let entry = try p.functions.entry(s, at: fn)
        let job = PoolJob(kind: .apply, pool: p, function: entry, mode: UInt8(LUAMP_POOL_APPLY))
        (options ?? TaskOptions(pool: p)).apply(to: job)
        job.itemsTotal = 1
        var frame: [UInt8] = []
        frame.reserveCapacity(96)
        let start = PoolFrame.begin(&frame, kind: PoolFrame.task)
        PoolFrame.appendTaskHeader(&frame, function: entry.id, mode: job.mode, count: UInt32(n),
                                   timeoutMs: job.timeoutMs, flags: 0, position: 1)
        s.checkStack(16)
        let (_, refs) = try SendLog.collectingReferences {
            try Codec.encodeTuple(s, from: first, count: Int32(n), path: "args", into: &frame)
            try PoolFrame.finishTask(&frame, from: start)
        }
        s.top = first - 1
        s.newTable(arrayCount: 1, hashCount: 1)   // room for the usual one result and `n`: no rehash per result
        job.resultsRef = luaL_ref(s.L, s.registryIndex())
        job.chunksMade = 1
        let chunk = PoolChunk(job: job, seq: 0, position: 1, count: n, function: entry, frame: frame)
        chunk.group.references = refs
        p.retry.append(chunk)
        p.enqueue(job)
        return job
    }

    /// Stores optional callback and error_callback at `cb`, `ecb`.
    private static func setCallbacks(_ s: LuaStack, _ job: PoolJob, _ cb: Int32, _ ecb: Int32) throws {
        for (i, isError) in [(cb, false), (ecb, true)] where i != 0 && !s.isNoneOrNil(i) {
            guard s.type(at: i) == .function else {
                throw LuaArgumentError(i, "\(isError ? "error_callback" : "callback") must be a function, got \(s.typeName(at: i))")
            }
            s.pushValue(i)
            let r = luaL_ref(s.L, s.registryIndex())
            if isError { job.errorCallbackRef = r } else { job.callbackRef = r }
        }
        if job.done, job.callbackRef != LUA_NOREF || job.errorCallbackRef != LUA_NOREF { job.pool.callbacks.append(job) }
    }

    /// Pushes what a finished job gives: raises its error, else its results. Returns the count.
    static func results(_ s: LuaStack, _ job: PoolJob) throws -> Int32 {
        if job.terminated { throw LuaRaise("the pool was terminated before this task finished") }
        if let (_, e) = job.firstError {
            switch e {
            case .mp(let m): throw m
            case .value(let r): throw RegistryValueError(ref: r)
            }
        }
        return job.pool.pushResults(s, job)
    }
}
