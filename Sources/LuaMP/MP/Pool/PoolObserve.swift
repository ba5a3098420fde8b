// What a pool tells the observers: counters for mp.status, progress bars, trace events for chunks, deaths and backlog.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims
import Synchronization

/// A pool's counters and observation options (one per `PoolState`).
struct PoolObservation {
    /// Pools count up per process: pool 1, pool 2, … (trace args, `mp.status`; atomic: runtimes
    /// on several threads of an embedding app make pools at once).
    static let counter = Atomic<Int>(0)

    let serial: Int
    /// `Pool{label_output = true}`.
    var labelOutput = false
    /// `Pool{progress = …}`: every call of the pool shows progress.
    var progress: ProgressSpec?
    /// Items finished (with a result or an error) and chunks failed, over the pool's life.
    var itemsDone = 0
    var failed = 0
    /// Workers started after the first `size` (replacements after deaths or maxtasksperchild).
    var started = 0
    var replaced = 0
    private var backlogTraced = -1
    private var backlogAt: Int64 = 0

    init() {
        serial = Self.counter.add(1, ordering: .relaxed).newValue
    }

    /// A worker was forked into a slot.
    mutating func workerStarted(pid: pid_t, name: String, size: Int) {
        started += 1
        Trace.name(pid: pid, name)
        if started > size {
            replaced += 1
            Trace.instant("worker started (replacement)", category: "pool", args: "\"pool\":\(serial),\"pid\":\(pid),\"name\":\(Trace.quoted(name))")
        }
    }

    /// A chunk of `job` has its outcome.
    mutating func chunkFinished(_ job: PoolJob, count: Int, failed chunkFailed: Bool) {
        itemsDone += count
        job.itemsDone += count
        if chunkFailed { failed += 1; job.itemsFailed += 1 }
        if let p = job.progress { p.done = job.itemsDone; p.failed = job.itemsFailed }
    }

    /// Worker `w` died (exit code or -signal `code`); `lost` are the chunks failed with WorkerLost.
    func workerDied(_ w: PoolWorker, lost: [PoolChunk], code: Int32) {
        guard Trace.on else { return }
        let pid = w.child.pid
        let end = Trace.now()
        for c in lost {
            // Run item by item, only the running item was lost; otherwise the chunk's range.
            let first = c.position + c.start + (c.job.perItem ? c.answered : 0)
            let n = c.job.perItem ? 1 : max(1, c.end - c.start)
            let outcome = c.job.cancelled ? "cancelled"          // stopped by cancel{force = true}
                : code == -SIGALRM && c.job.timeoutMs > 0 ? "TimeoutError" : "WorkerLost"
            Trace.span(PoolTrace.name(c.job.mode, first, n), category: "task",
                       start: w.tracedAnswer > 0 ? w.tracedAnswer : end, end: end, pid: pid,
                       args: PoolTrace.args(pool: serial, c.job.mode, first, n, outcome: outcome))
        }
        let stopped = !lost.isEmpty && lost.allSatisfy { $0.job.cancelled }
        Trace.instant(stopped ? "WorkerStopped" : "WorkerLost", category: "death", pid: pid,
                      args: "\"pool\":\(serial),\"pid\":\(pid),\"code\":\(code),\"lost\":\(lost.count)")
    }

    /// The backlog counter (items submitted and not finished), at most every 10 ms when it changed.
    mutating func traceBacklog(_ p: PoolState) {
        let t = Trace.now()
        let n = p.backlog
        guard t - backlogAt >= 10_000 || (n == 0 && backlogTraced != 0) else { return }
        guard n != backlogTraced else { return }
        backlogAt = t
        backlogTraced = n
        Trace.counter("pool \(serial) backlog", "items", n)
    }
}

extension PoolState {
    /// Items submitted and not yet finished (known lengths only: an iterator's unread input is not counted).
    var backlog: Int {
        jobs.reduce(0) { n, j in n + (j.itemsTotal >= 0 ? max(0, j.itemsTotal - j.itemsDone) : 0) }
    }

    /// Gives `job` a progress bar when the call (`spec`), the pool or the settings ask for one.
    func attachProgress(_ s: LuaStack, _ job: PoolJob, _ spec: ProgressSpec?, label: String) {
        guard let sp = spec ?? observed.progress ?? (ProgressSettings.all ? .bar(label: nil) : nil) else { return }
        var sp2 = sp
        // A pool-wide callback is shared by its calls: each call gets its own reference.
        if spec == nil, case .callback(let r) = sp {
            _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(r))
            sp2 = .callback(luaL_ref(s.L, s.registryIndex()))
        }
        let bar = ProgressBar(spec: sp2, defaultLabel: label, total: job.itemsTotal >= 0 ? job.itemsTotal : nil) { [weak job] in
            job?.done ?? true
        }
        job.progress = bar
        ProgressBoard.add(runtime, bar)
    }
}

/// The worker's side of tracing: one span per chunk.
enum PoolTrace {
    /// `map 1–250000`, `map 7`, `apply`.
    static func name(_ mode: UInt8, _ position: Int, _ count: Int) -> String {
        switch Int(mode) {
        case Int(LUAMP_POOL_APPLY): return "apply"
        case Int(LUAMP_POOL_STAR): return count == 1 ? "starmap \(position)" : "starmap \(position)–\(position + count - 1)"
        default: return count == 1 ? "map \(position)" : "map \(position)–\(position + count - 1)"
        }
    }

    /// `mp.trace_stop()`: every live pool's workers write their buffered events (an `L` frame).
    static let registered: Bool = {
        TraceSession.addBeforeStop { s in
            var asked = false
            for p in PoolRegistry.of(s).live where p.isOwnedHere && p.phase != .terminated {
                asked = true
                var f: [UInt8] = []
                let start = PoolFrame.begin(&f, kind: PoolFrame.traceFlush)
                try? PoolFrame.finish(&f, from: start)
                for case let w? in p.workers { w.send(f); w.flush() }
            }
            return asked
        }
        return true
    }()

    /// Tracing, before a terminate's SIGTERM: closes the workers' input so idle ones exit on
    /// their own (writing their last events), waiting for them up to 0.2 s in all.
    static func letWorkersFlush(_ live: [PoolWorker]) {
        for w in live { w.closeInput() }
        let deadline = Clock.monotonicSeconds() + 0.2
        for w in live {
            let left = deadline - Clock.monotonicSeconds()
            if left <= 0 { break }
            _ = try? w.child.join(timeout: left)
        }
    }

    static func args(pool: Int, _ mode: UInt8, _ position: Int, _ count: Int, outcome: String) -> String {
        "\"pool\":\(pool),\"first\":\(position),\"last\":\(position + max(count, 1) - 1),\"items\":\(count),\"outcome\":\"\(outcome)\""
    }

    /// The worker ran a chunk that began at `start`; `out` holds its answer frame (R or E).
    static func chunkRan(pool: Int, mode: UInt8, position: UInt64, count: UInt32, since start: Int64, out: [UInt8]) {
        let failed = out.count > PoolFrame.headerSize && out[PoolFrame.headerSize] == PoolFrame.failure
        let kind: StaticString = Int(mode) == Int(LUAMP_POOL_APPLY) ? "apply" : Int(mode) == Int(LUAMP_POOL_STAR) ? "starmap" : "map"
        Trace.chunk(kind, pool: pool, first: Int(position), count: Int(count), start: start, end: Trace.now(),
                    outcome: failed ? "error" : "ok")
    }
}
