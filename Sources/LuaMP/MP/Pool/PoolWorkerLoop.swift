// The pool worker process: runs the initializer, then reads task frames and writes results until EOF.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// Per-worker words in a small `MAP_SHARED` page the host maps before forking any worker:
/// the id of the chunk the worker has *started* (stored before the task function runs, or the
/// host's "taken back" mark), a ready flag (set after the initializer), and the deadline of
/// the item it is running under a timeout (0 when none). After a worker dies the host reads them to tell a
/// task that was running (→ `WorkerLost`) from ones that were only queued (→ re-dispatched).
/// The words do not depend on how chunks reach the worker.
struct WorkerStatusPage {
    static let slotSize = 64
    let base: UnsafeMutableRawPointer
    let size: Int

    /// - Throws: `LuaRaise` when the mapping fails.
    init(slots: Int) throws {
        size = max(4096, (slots * Self.slotSize + 4095) & ~4095)
        guard let p = luamp_map_shared(size) else {
            throw LuaRaise("cannot create a pool: mmap failed: \(String(cString: strerror(errno)))")
        }
        base = p
    }

    private func word64(_ slot: Int) -> UnsafeMutablePointer<UInt64> {
        (base + slot * Self.slotSize).assumingMemoryBound(to: UInt64.self)
    }
    private func word32(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        (base + slot * Self.slotSize + 8).assumingMemoryBound(to: UInt32.self)
    }
    private func deadlineWord(_ slot: Int) -> UnsafeMutablePointer<UInt64> {
        (base + slot * Self.slotSize + 16).assumingMemoryBound(to: UInt64.self)
    }

    // The timeout backstop. The worker's own timer (SIGALRM) ends an item that overruns, but a
    // task can defeat it (a C module that ignores or blocks SIGALRM, or installs a handler). So
    // the worker also records the item's deadline (CLOCK_MONOTONIC ns, the same clock in every
    // process), and the host's pool service kills the worker once that deadline is `grace` past.
    // The end of an item and the host's verdict race on this word: the worker clears it with a
    // compare-and-swap, and the host marks it `overdue` with one before it kills, so exactly one
    // wins — a worker that finds the mark waits to be killed rather than go on.

    /// Marks a deadline the host has ruled on (the worker is being killed).
    static let overdue: UInt64 = 1 << 63

    /// Worker: an item with a timeout starts; it must end by `deadline` (ns, CLOCK_MONOTONIC).
    func itemStarted(_ slot: Int, deadline: UInt64) { luamp_atomic_store64(deadlineWord(slot), deadline & ~Self.overdue) }

    /// Worker: the item ended. False when the host already ruled it overdue (it is being killed).
    func itemEnded(_ slot: Int) -> Bool {
        let cur = luamp_atomic_load64(deadlineWord(slot))
        return cur & Self.overdue == 0 && luamp_atomic_cas64(deadlineWord(slot), cur, 0) != 0
    }

    /// Host: the running item's deadline, or 0 (no item under a timeout, or already ruled on).
    func itemDeadline(_ slot: Int) -> UInt64 {
        let d = luamp_atomic_load64(deadlineWord(slot))
        return d & Self.overdue != 0 ? 0 : d
    }

    /// Host: rules the item with deadline `d` (a value `itemDeadline` returned) overdue, unless
    /// the worker ended it meanwhile. True: the host must kill the worker now.
    func ruleOverdue(_ slot: Int, _ d: UInt64) -> Bool {
        luamp_atomic_cas64(deadlineWord(slot), d, d | Self.overdue) != 0
    }

    /// Marks chunks the host took back (`steal`): `t | stolen` means every chunk sent to this
    /// worker with an id ≤ `t` that it has not started yet is taken back, and the worker skips it.
    ///
    /// One mark covers them all because of two rules: chunk ids are stamped at each send from a
    /// pool-wide counter, so they grow in the order a worker reads its pipe; and the host only
    /// steals the chunks right behind the one the worker has started (a run of them, with one
    /// mark: the id of the last). The chunks taken back while one chunk runs are therefore
    /// exactly those between it and the next one the worker keeps.
    static let stolen: UInt64 = 1 << 63

    /// The last chunk the worker started, or `t | stolen` (chunks up to `t` taken back since).
    func started(_ slot: Int) -> UInt64 { luamp_atomic_load64(word64(slot)) }

    /// Worker: claims chunk `id` before running it. False when the host took it back (skip it).
    func claim(_ slot: Int, _ id: UInt64) -> Bool {
        while true {
            let cur = luamp_atomic_load64(word64(slot))
            if cur & Self.stolen != 0 && cur & ~Self.stolen >= id { return false }
            if luamp_atomic_cas64(word64(slot), cur, id) != 0 { return true }
        }
    }

    /// Host: true when `word` (a value of `started`) shows that the worker has started chunk
    /// `head` (the oldest one it has not answered) and nothing after it: it claimed `head`, or
    /// a chunk sent after `head` was stolen since and the worker claimed nothing newer.
    static func hasStarted(_ word: UInt64, _ head: UInt64) -> Bool {
        word == head || (word & stolen != 0 && word & ~stolen > head)
    }

    /// Host, after the worker died: true if it may have started chunk `id` (one it had not
    /// answered): it claimed `id` or a later chunk, or `id` was sent before a chunk that was
    /// stolen since (so it was the started one). Such a chunk is never run again.
    static func mayHaveStarted(_ word: UInt64, _ id: UInt64) -> Bool {
        word & stolen != 0 ? id < word & ~stolen : id <= word
    }

    /// Host: takes back every unstarted chunk up to `id` (the run right behind the started one)
    /// if the word still reads `expected` (the worker has not claimed anything newer). Exactly
    /// one of `claim`/`steal` wins.
    func steal(_ slot: Int, expected: UInt64, _ id: UInt64) -> Bool {
        luamp_atomic_cas64(word64(slot), expected, id | Self.stolen) != 0
    }
    func isReady(_ slot: Int) -> Bool { luamp_atomic_load32(word32(slot)) != 0 }
    func setReady(_ slot: Int) { luamp_atomic_store32(word32(slot), 1) }
    func reset(_ slot: Int) {
        luamp_atomic_store64(word64(slot), 0)
        luamp_atomic_store64(deadlineWord(slot), 0)
        luamp_atomic_store32(word32(slot), 0)
    }
    func unmap() { munmap(base, size) }
}

/// What a worker needs to know, captured by the host before the fork.
struct WorkerConfig {
    let slot: Int
    let name: String
    let taskFD: Int32
    let resultFD: Int32
    let status: WorkerStatusPage
    let initializerRef: Int32
    let initargsRef: Int32
    let maxTasks: Int?
    /// The pool's serial number (traces, `mp.status`).
    let pool: Int
    /// `label_output`: the worker's output lines start with `[name] `.
    let labelOutput: Bool
}

/// The worker's side of the channel. Runs in the forked child only and never returns into
/// the host's code: `run` returns the exit status for `ChildProcess.spawn`.
///
/// Tasks run on a fresh Lua thread (so tracebacks show the task's frames, not the host frames
/// the worker was forked from) under `lua_pcall` with the traceback handler. The collector
/// starts stopped and restarts in generational mode once the worker allocated
/// max(32 MiB, half the inherited heap) (`luamp_worker_gc_begin`): a worker that allocates
/// little never traverses — and so never copies — the heap it inherited (docs/pools.md).
/// SIGINT is ignored (set by `ChildProcess.spawn(ignoreInterrupts:)` before the child unblocks
/// signals): the host stops workers with SIGTERM.
enum PoolWorkerLoop {
    static func run(_ s: LuaStack, _ c: WorkerConfig, _ ctx: ChildProcess.ChildContext,
                    parentName: String, parentPID: pid_t) -> Int32 {
        ProcessTree.enterChild(s, ProcessRecord(name: c.name, daemon: true), parentName: parentName, parentPID: parentPID)
        ChildRandom.reseed(s)
        OutputLabels.enterWorker(s, label: c.labelOutput, name: c.name)
        let L = s.L
        guard let T = lua_newthread(L) else { return 1 }
        // Collector: stopped until the worker has allocated max(32 MiB, half the inherited heap).
        luamp_worker_gc_begin(L, T, max(32 * 1024, luamp_gc_count_kb(L) / 2))
        let ts = LuaStack(T)
        ts.newTable()                                  // T[1]: function id → function
        let fns: Int32 = 1

        if c.initializerRef != LUA_NOREF {
            _ = lua_rawgeti(T, ts.registryIndex(), lua_Integer(c.initializerRef))
            var n: Int32 = 0
            if c.initargsRef != LUA_NOREF {
                _ = lua_rawgeti(T, ts.registryIndex(), lua_Integer(c.initargsRef))
                let args = ts.top
                let count = ts.rawGet(args, field: "n") == .number ? (ts.toInteger(-1) ?? 0) : ts.rawLength(args)
                ts.pop()
                n = Int32(clamping: max(0, min(count, 250)))
                ts.checkStack(n + 4)
                if n > 0 { for i in 1...n { ts.rawGet(args, index: Int64(i)) } }
                ts.remove(args)
            }
            if luamp_pcall_traceback(T, n, 0) != LUA_OK {
                let e = ts.popError(status: LUA_ERRRUN)
                let text = e.description
                fflush(luamp_stdout())
                fputs("Pool worker \(c.name) (pid \(getpid())): initializer failed: \(text)\n", luamp_stderr())
                fflush(luamp_stderr())
                ctx.report(text)
                return 1
            }
        }
        c.status.setReady(c.slot)

        let timer = ItemTimer(status: c.status, slot: c.slot)
        var inbox = FrameInbox()
        var out: [UInt8] = []
        out.reserveCapacity(4096)
        var done = 0
        while true {
            let frame: UnsafeRawBufferPointer
            do {
                guard let f = try nextFrame(&inbox, c.taskFD) else { break }
                frame = f
            } catch {
                fputs("Pool worker \(c.name) (pid \(getpid())): \(error)\n", luamp_stderr())
                return 3
            }
            var r = ByteReader(frame, from: 1)
            switch frame[0] {
            case PoolFrame.define:
                guard let id = try? r.int(UInt32.self) else { return 3 }
                do {
                    try Codec.decode(ts, r.rest)       // leaves the stack as it was when it throws
                } catch {
                    // A function that does not load here: its tasks fail with this reason.
                    let why = (error as? MPError)?.message ?? String(describing: error)
                    ts.push("the task function could not be loaded in the worker: \(why)")
                }
                lua_rawseti(T, fns, lua_Integer(id))
            case PoolFrame.clear:
                ts.newTable()
                ts.replace(fns)
            case PoolFrame.traceFlush:
                TraceControl.follow(name: c.name)
                Trace.flush()
            case PoolFrame.task:
                guard let task = try? TaskHeader(&r) else { return 3 }
                guard c.status.claim(c.slot, task.id) else { continue }   // the host gave it to another worker
                TraceControl.follow(name: c.name)
                let t0 = Trace.on ? Trace.now() : 0
                if task.perItem {
                    guard runItems(ts, fns: fns, task, args: r.rest, out: &out, fd: c.resultFD, timer: timer) else { return 0 }
                } else {
                    runTask(ts, fns: fns, task, args: r.rest, out: &out, timer: timer)
                }
                if t0 > 0 {
                    PoolTrace.chunkRan(pool: c.pool, mode: task.mode, position: task.position + UInt64(task.start),
                                       count: task.end > task.start ? task.end - task.start : task.count, since: t0, out: out)
                }
                fflush(nil)
                guard out.withUnsafeBytes({ PoolIO.writeAll(c.resultFD, $0) }) else { return 0 }   // host gone
                _ = luamp_worker_gc_check(L)
                done += 1
                if let m = c.maxTasks, done >= m { return finish(s) }
            default:
                fputs("Pool worker \(c.name) (pid \(getpid())): unknown frame kind \(frame[0])\n", luamp_stderr())
                return 3
            }
        }
        return finish(s)
    }

    /// Ends the worker like any child: cleans up processes its tasks started. Returns 0.
    private static func finish(_ s: LuaStack) -> Int32 {
        MPModule.finishCapabilities(s)
        return 0
    }

    /// The next frame, reading (blocking) as needed; nil at EOF.
    private static func nextFrame(_ inbox: inout FrameInbox, _ fd: Int32) throws -> UnsafeRawBufferPointer? {
        while true {
            if let f = try inbox.next() { return f }
            if try inbox.fill(fd) == .eof { return nil }
        }
    }

    /// A `T` frame's fields (in wire order; `PoolFrame.appendTaskHeader` writes them): chunk id,
    /// function id, mode, item count, the item range to run, the per-item timeout, the
    /// per-item flag, and the chunk's first input position (traces).
    struct TaskHeader {
        let id: UInt64, fid: UInt32, mode: UInt8, count: UInt32
        let start: UInt32, end: UInt32, timeoutMs: UInt32, perItem: Bool, position: UInt64

        init(_ r: inout ByteReader) throws {
            (id, fid, mode, count) = (try r.int(UInt64.self), try r.int(UInt32.self), try r.int(UInt8.self), try r.int(UInt32.self))
            (start, end, timeoutMs) = (try r.int(UInt32.self), try r.int(UInt32.self), try r.int(UInt32.self))
            perItem = try r.int(UInt8.self) & PoolFrame.perItem != 0
            position = try r.int(UInt64.self)
        }
    }

    /// The per-item timeout of one worker.
    struct ItemTimer {
        let status: WorkerStatusPage
        let slot: Int

        /// Before an item with a timeout (`ms` > 0) runs: arms the timer and records the item's
        /// deadline for the host's backstop. SIGALRM keeps its default action, so the worker
        /// dies of it even in C (a blocking read, `os.execute`); the host reports `TimeoutError`
        /// for the item. A task that defeats the signal is killed by the host a little later.
        func start(_ ms: UInt32) {
            guard ms > 0 else { return }
            status.itemStarted(slot, deadline: Deadline.monotonicNow() &+ UInt64(ms) * 1_000_000)
            PoolWorkerLoop.armTimer(ms)
        }

        /// After the item: disarms both. When the host has already ruled the item overdue, its
        /// kill is on the way: the worker waits for it, so the item is reported as timed out and
        /// nothing after it starts (and ends itself should the kill not come: a host gone).
        func end(_ ms: UInt32) {
            guard ms > 0 else { return }
            PoolWorkerLoop.armTimer(0)
            guard !status.itemEnded(slot) else { return }
            for _ in 0..<100 { usleep(100_000) }
            fflush(nil)
            _exit(1)
        }
    }

    /// Arms (ms > 0) or disarms (0) the process's interval timer (ITIMER_REAL).
    static func armTimer(_ ms: UInt32) {
        var it = itimerval()
        it.it_value.tv_sec = Int(ms / 1000)
        it.it_value.tv_usec = Int(ms % 1000) * 1000
        _ = setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &it, nil)
    }

    /// Pushes the task function (after the chunk runner, when `runner`) or returns why it cannot run.
    private static func pushTask(_ ts: LuaStack, fns: Int32, _ fid: UInt32, runner: Bool = true) -> String? {
        if runner { lua_pushcclosure(ts.L, luamp_pool_run_chunk, 0) }
        switch lua_rawgeti(ts.L, fns, lua_Integer(fid)) {
        case LUA_TFUNCTION: return nil
        case LUA_TSTRING: return ts.toString(-1) ?? ""
        default: return "the task function could not be loaded in the worker"
        }
    }

    /// Pops a task's error ({value, text, traceback} from the handler of `luamp_pool_push_handler`, or a string) and
    /// appends message, traceback and the value's encoding (empty when it cannot be sent).
    private static func appendError(_ ts: LuaStack, message fixed: String?, into out: inout [UInt8]) {
        var message = fixed ?? ""
        var traceback = ""
        var value: [UInt8] = []
        if fixed == nil {
            let e = ts.top
            if ts.type(at: e) == .table {
                if ts.rawGet(e, index: 2) == .string { message = ts.toString(-1) ?? "" }
                ts.pop()
                if ts.rawGet(e, index: 3) == .string { traceback = trimTraceback(ts.toString(-1) ?? "") }
                ts.pop()
                ts.rawGet(e, index: 1)
                if let b = try? SendLog.undoingOnFailure({ try Codec.encode(ts, at: ts.top, path: "error") }) {
                    value = b
                } else if ts.type(at: -1) == .table, ts.checkStack(8) {
                    // Not sendable as it is (an mp error's metatable, a function inside): its
                    // plain fields (kind, message, code …) travel.
                    let src = ts.top
                    ts.newTable()
                    let copy = ts.top
                    ts.pushNil()
                    while lua_next(ts.L, src) != 0 {
                        let kt = ts.type(at: -2), vt = ts.type(at: -1)
                        if (kt == .string || kt == .number) && (vt == .string || vt == .number || vt == .boolean) {
                            ts.pushValue(-2)
                            ts.insert(-2)
                            lua_rawset(ts.L, copy)
                        } else {
                            ts.pop()
                        }
                    }
                    if let b = try? Codec.encode(ts, at: copy, path: "error") { value = b }
                    ts.pop()
                }
                ts.pop()
            } else {
                message = ts.toString(e) ?? "(error object is a \(ts.typeName(at: e)) value)"
            }
            ts.pop()
            if traceback.hasPrefix("stack traceback:\n") == false && !traceback.isEmpty { traceback = "stack traceback:\n" + traceback }
        }
        for b in [Array(message.utf8.prefix(1 << 20)), Array(traceback.utf8.prefix(1 << 20)), value] {
            out.appendLE(UInt32(b.count))
            out.append(contentsOf: b)
        }
    }

    /// Runs one chunk and leaves its `R` or `E` frame in `out`. The message handler and the
    /// decoder's slot go on the stack first, so nothing is moved under the chunk's items.
    private static func runTask(_ ts: LuaStack, fns: Int32, _ t: TaskHeader, args: UnsafeRawBufferPointer, out: inout [UInt8],
                                timer: ItemTimer) {
        let T = ts.L
        let base = ts.top
        defer { ts.top = base }
        out.removeAll(keepingCapacity: true)
        luamp_pool_push_handler(T)
        let handler = base + 1
        var fixed: String?
        failed: do {
            if t.mode == UInt8(LUAMP_POOL_MAP), let n = PoolNumbers.decodeList(ts, args) {
                // A map over plain numbers: the items decoded into a list, results stored there.
                let list = ts.top
                lua_pushcclosure(T, luamp_pool_run_list, 0)
                ts.pushValue(list)
                ts.push(Int64(n))
                if let why = pushTask(ts, fns: fns, t.fid, runner: false) { fixed = why; break failed }
                timer.start(t.timeoutMs)
                let status = luamp_pcall(T, 3, 0, handler)
                timer.end(t.timeoutMs)
                if status != LUA_OK { break failed }
                let start = PoolFrame.begin(&out, kind: PoolFrame.result)
                out.appendLE(t.id)
                do {
                    if !PoolNumbers.encodeList(ts, input: list, position: 1, count: n, into: &out) {
                        guard ts.checkStack(Int32(n) + 8) else { throw MPError("SendError", "result: too many values for the Lua stack") }
                        for i in 1...n { ts.rawGet(list, index: Int64(i)) }
                        try Codec.encodeTuple(ts, from: list + 1, count: Int32(n), path: "result", into: &out)
                    }
                    try PoolFrame.finish(&out, from: start)
                    return
                } catch {
                    out.removeAll(keepingCapacity: true)
                    fixed = (error as? MPError)?.message ?? String(describing: error)
                    break failed
                }
            }
            ts.pushNil()                                   // the decoder's slot
            let refs = ts.top
            if let why = pushTask(ts, fns: fns, t.fid) { fixed = why; break failed }
            ts.push(Int64(t.count))
            ts.push(Int64(t.mode))
            let n: Int32
            do { n = try Codec.decodeTuple(ts, args, refs: refs) } catch {
                fixed = "cannot decode the task's arguments: \(error)"
                break failed
            }
            timer.start(t.timeoutMs)
            let status = luamp_pcall(T, 3 + n, LUA_MULTRET, handler)
            timer.end(t.timeoutMs)
            if status != LUA_OK { break failed }
            let start = PoolFrame.begin(&out, kind: PoolFrame.result)
            out.appendLE(t.id)
            do {
                try Codec.encodeTuple(ts, from: refs + 1, count: ts.top - refs, path: "result", into: &out)
                try PoolFrame.finish(&out, from: start)
                return
            } catch {
                out.removeAll(keepingCapacity: true)
                fixed = (error as? MPError)?.message ?? String(describing: error)
            }
        }
        let start = PoolFrame.begin(&out, kind: PoolFrame.failure)
        out.appendLE(t.id)
        appendError(ts, message: fixed, into: &out)
        try? PoolFrame.finish(&out, from: start)
    }

    /// Runs a chunk item by item (`start..<end`), writing an `I` frame for each as it ends (so
    /// a death loses only the running item), and leaves the closing empty `R` frame in `out`.
    /// Returns false when the host is gone.
    private static func runItems(_ ts: LuaStack, fns: Int32, _ t: TaskHeader, args: UnsafeRawBufferPointer,
                                 out: inout [UInt8], fd: Int32, timer: ItemTimer) -> Bool {
        let T = ts.L
        let base = ts.top
        defer { ts.top = base }
        out.removeAll(keepingCapacity: true)
        var fixed: String?
        var n: Int32 = 0
        luamp_pool_push_handler(T)
        let handler = base + 1
        ts.pushNil()                                       // the decoder's slot
        do { n = try Codec.decodeTuple(ts, args, refs: handler + 1) } catch { fixed = "cannot decode the task's arguments: \(error)" }
        let items = base + 3
        var i = t.start
        while i < t.end {
            let top = ts.top
            out.removeAll(keepingCapacity: true)
            let start = PoolFrame.begin(&out, kind: PoolFrame.item)
            out.appendLE(t.id)
            out.appendLE(i)
            var why = fixed
            if why == nil, Int32(i) >= n { why = "a worker got \(n) items for a chunk of \(t.count)" }
            var ok = false
            if why == nil {
                why = pushTask(ts, fns: fns, t.fid)
                if why == nil {
                    ts.push(Int64(1))
                    ts.push(Int64(t.mode))
                    ts.pushValue(items + Int32(i))
                    timer.start(t.timeoutMs)
                    let status = luamp_pcall(T, 4, 1, handler)
                    timer.end(t.timeoutMs)
                    if status == LUA_OK {
                        out.append(1)
                        do {
                            try Codec.encodeTuple(ts, from: ts.top, count: 1, path: "result[\(i + 1)]", into: &out)
                            ok = true
                        } catch {
                            out.removeSubrange((start + PoolFrame.headerSize + 1 + 12)...)
                            why = (error as? MPError)?.message ?? String(describing: error)
                        }
                    }
                }
            }
            if !ok {
                out.append(0)
                appendError(ts, message: why, into: &out)
            }
            ts.top = top
            do { try PoolFrame.finish(&out, from: start) } catch {
                out.removeAll(keepingCapacity: true)
                let s2 = PoolFrame.begin(&out, kind: PoolFrame.item)
                out.appendLE(t.id); out.appendLE(i); out.append(0)
                appendError(ts, message: "\(error)", into: &out)
                try? PoolFrame.finish(&out, from: s2)
            }
            fflush(nil)
            guard out.withUnsafeBytes({ PoolIO.writeAll(fd, $0) }) else { return false }
            i += 1
        }
        out.removeAll(keepingCapacity: true)
        let start = PoolFrame.begin(&out, kind: PoolFrame.result)
        out.appendLE(t.id)
        try? Codec.encodeTuple(ts, from: ts.top + 1, count: 0, path: "result", into: &out)
        try? PoolFrame.finish(&out, from: start)
        return true
    }

    /// Drops the last traceback line when it is the worker's own C chunk runner (`[C]: in ?`).
    private static func trimTraceback(_ tb: String) -> String {
        let suffix = "\n\t[C]: in ?"
        return tb.hasSuffix(suffix) ? String(tb.dropLast(suffix.count)) : tb
    }
}
