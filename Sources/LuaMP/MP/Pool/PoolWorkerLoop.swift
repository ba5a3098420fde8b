// The pool worker process: runs the initializer, then reads task frames and writes results until EOF.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// Per-worker words in a small `MAP_SHARED` page the host maps before forking any worker:
/// the id of the chunk the worker has *started* (stored before the task function runs, or the
/// host's "taken back" mark) and a ready flag (set after the initializer). After a worker dies the host reads them to tell a
/// task that was running (→ `WorkerLost`) from ones that were only queued (→ re-dispatched).
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

    /// Marks chunks the host took back (`steal`): `t | stolen` means every chunk sent to this
    /// worker with an id ≤ `t` that it has not started yet is taken back, and the worker skips it.
    ///
    /// One mark covers them all because of two rules: chunk ids are stamped at each send from a
    /// pool-wide counter, so they grow in the order a worker reads its pipe; and the host only
    /// steals the chunk right behind the one the worker has started. The chunks taken back while
    /// one chunk runs are therefore exactly those between it and the next one the worker keeps.
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

    /// Host: takes back chunk `id` (the chunk right behind the started one) if the word still
    /// reads `expected` (the worker has not claimed anything newer). Exactly one of
    /// `claim`/`steal` wins.
    func steal(_ slot: Int, expected: UInt64, _ id: UInt64) -> Bool {
        luamp_atomic_cas64(word64(slot), expected, id | Self.stolen) != 0
    }
    func isReady(_ slot: Int) -> Bool { luamp_atomic_load32(word32(slot)) != 0 }
    func setReady(_ slot: Int) { luamp_atomic_store32(word32(slot), 1) }
    func reset(_ slot: Int) {
        luamp_atomic_store64(word64(slot), 0)
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
        ProcessTree.enterChild(ProcessRecord(name: c.name, daemon: true), parentName: parentName, parentPID: parentPID)
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
            var r = PayloadReader(frame)
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
                guard let id = try? r.int(UInt64.self), let fid = try? r.int(UInt32.self),
                      let mode = try? r.int(UInt8.self), let count = try? r.int(UInt32.self),
                      let position = try? r.int(UInt64.self) else { return 3 }
                guard c.status.claim(c.slot, id) else { continue }   // the host gave it to another worker
                TraceControl.follow(name: c.name)
                let t0 = Trace.on ? Trace.now() : 0
                runTask(ts, fns: fns, id: id, fid: fid, mode: mode, count: count, args: r.rest, out: &out)
                if t0 > 0 { PoolTrace.chunkRan(pool: c.pool, mode: mode, position: position, count: count, since: t0, out: out) }
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

    /// Runs one chunk and leaves its `R` or `E` frame in `out`.
    private static func runTask(_ ts: LuaStack, fns: Int32, id: UInt64, fid: UInt32, mode: UInt8, count: UInt32,
                                args: UnsafeRawBufferPointer, out: inout [UInt8]) {
        let T = ts.L
        let base = ts.top
        defer { ts.top = base }
        out.removeAll(keepingCapacity: true)
        var message = ""
        var traceback = ""
        failed: do {
            lua_pushcclosure(T, luamp_pool_run_chunk, 0)
            switch lua_rawgeti(T, fns, lua_Integer(fid)) {
            case LUA_TFUNCTION: break
            case LUA_TSTRING:
                message = ts.toString(-1) ?? ""
                break failed
            default:
                message = "the task function could not be loaded in the worker"
                break failed
            }
            ts.push(Int64(count))
            ts.push(Int64(mode))
            let n: Int32
            do { n = try Codec.decodeTuple(ts, args) } catch {
                message = "cannot decode the task's arguments: \(error)"
                break failed
            }
            if luamp_pcall_traceback(T, 3 + n, LUA_MULTRET) != LUA_OK {
                let e = ts.popError(status: LUA_ERRRUN)
                message = e.message
                if case .runtime(_, let tb) = e { traceback = trimTraceback(tb) }
                break failed
            }
            let start = PoolFrame.begin(&out, kind: PoolFrame.result)
            out.appendLE(id)
            do {
                try Codec.encodeTuple(ts, from: base + 1, count: ts.top - base, path: "result", into: &out)
                try PoolFrame.finish(&out, from: start)
                return
            } catch {
                out.removeAll(keepingCapacity: true)
                message = (error as? MPError)?.message ?? String(describing: error)
            }
        }
        let start = PoolFrame.begin(&out, kind: PoolFrame.failure)
        out.appendLE(id)
        for text in [message, traceback] {
            let b = Array(text.utf8.prefix(1 << 20))
            out.appendLE(UInt32(b.count))
            out.append(contentsOf: b)
        }
        try? PoolFrame.finish(&out, from: start)
    }

    /// Drops the last traceback line when it is the worker's own C chunk runner (`[C]: in ?`).
    private static func trimTraceback(_ tb: String) -> String {
        let suffix = "\n\t[C]: in ?"
        return tb.hasSuffix(suffix) ? String(tb.dropLast(suffix.count)) : tb
    }
}
