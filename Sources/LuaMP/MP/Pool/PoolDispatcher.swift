// The pool's pump: send chunks to workers, poll result pipes and pidfds, deliver results, handle deaths, run callbacks.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension PoolState {
    /// Most chunks an imap job reads ahead of its consumer.
    var lookaheadLimit: Int { size * (Self.inflightPerWorker + 1) }

    /// Makes progress until `done()` holds or `timeout` seconds passed: sends queued chunks,
    /// reads results, handles dead workers, runs due callbacks. Every pool call pumps; nothing
    /// happens in the background (there are no threads).
    /// - Parameters:
    ///   - timeout: nil waits as long as it takes; 0 makes one non-blocking round.
    ///   - pullAll: read every job's iterator input (join), not only `pulling`'s.
    ///   - pulling: the imap job whose iterator function may be called now.
    ///   - runsCallbacks: false for submitting calls (apply_async, map_async, imap), so a
    ///     callback's error never takes the place of the AsyncResult being returned.
    /// - Returns: `done()`.
    /// - Throws: callback errors, `interrupted!` (after terminating the pool), fork failures.
    @discardableResult
    func pump(_ s: LuaStack, timeout: Double?, pullAll: Bool = false, pulling: PoolJob? = nil,
              callbacks runsCallbacks: Bool = true, interruptible: PoolJob? = nil, interrupts: Bool = true,
              interruptCancelsAll: Bool = false, until done: () -> Bool) throws -> Bool {
        try checkOwner()
        // Work left outstanding when the call returns goes on while the host runs Lua.
        defer { if !inBackground && needsService { PoolService.workPending(s) } }
        if timeout != 0 { HostWait.tick(s) }
        let deadline = timeout.map { Clock.monotonicSeconds() + max(0, $0) }
        let t0 = Trace.on && timeout != 0 && runtime.waits.depth == 0 ? Trace.now() : 0
        defer { if t0 > 0 { Trace.wait("pool \(observed.serial) results", since: t0) } }
        while true {
            garbage.collect(s)
            try dispatch(s, pullAll: pullAll, pulling: pulling)
            if runsCallbacks { try runCallbacks(s) }
            if !inBackground { try ProgressBoard.redraw(s, runtime) }
            if done() || phase == .terminated { return done() }
            if interrupts && luamp_take_interrupt() != 0 {
                // Ctrl-C. Taken (flag and hook), so a pcall catches it once; an uncaught one ends
                // the script with status 130, and `finish` then stops the children rather than
                // joins them. Waiting for one task (map, apply, get, an imap's next result): that
                // task is cancelled (its running chunks' workers stopped and replaced) and the pool
                // stays usable (the REPL keeps a pool made by an earlier line); `join` cancels
                // every task left the same way. Otherwise the pool is terminated.
                if let job = interruptible {
                    _ = try? cancel(s, job, force: true)
                } else if interruptCancelsAll {
                    for job in jobs where !job.done { _ = try? cancel(s, job, force: true) }
                } else {
                    terminate(s)
                }
                throw LuaRaise("interrupted!")
            }
            var ms: Int32 = 100
            let respawnWait = respawnAt - Clock.monotonicSeconds()
            if respawnAt > 0 && respawnWait > 0 {   // a replacement is due then (startup backoff)
                ms = Int32(min(100, (respawnWait * 1000).rounded(.up)))
            }
            var last = false
            if let d = deadline {
                let left = d - Clock.monotonicSeconds()
                if left <= 0 { ms = 0; last = true } else { ms = min(ms, Int32(min(100, (left * 1000).rounded(.up)))) }
            }
            if Trace.on && ms > 0 { Trace.idle(long: false) }
            let fired = try waitForEvents(s, ms)
            if !last { HostWait.tick(s) }
            // A non-blocking call (a submission, a background round) whose poll found nothing:
            // nothing changed since the dispatch above, so another would find nothing to do.
            if last && !fired && timeout == 0 { return done() }
            if last {
                try dispatch(s, pullAll: pullAll, pulling: pulling)
                if runsCallbacks { try runCallbacks(s) }
                return done()
            }
        }
    }

    // MARK: sending

    /// True while anything submitted is not yet sent (queued chunks or unread input). O(1)
    /// amortised: ended or cancelled jobs at the front of `feeding` are dropped on the way.
    var hasUnsentWork: Bool {
        if !retry.isEmpty { return true }
        while let job = feeding.first, job.source == nil || job.cancelled { feeding.removeFirst() }
        return !feeding.isEmpty
    }

    /// Starts missing workers, hands chunks to workers with room, flushes pipes, and lets
    /// workers of a closed pool exit once nothing is left to send.
    func dispatch(_ s: LuaStack, pullAll: Bool, pulling: PoolJob?) throws {
        guard phase != .terminated else { return }
        // Broken, calls return at once without waiting for events: look at the starting worker
        // here, so its death or readiness is noticed and the next attempt can follow.
        if brokenError != nil { try waitForEvents(s, 0) }
        killOverdueWorkers()
        // Never forks in a background round (a Lua hook): replacements start at the next pool call.
        if !inBackground && (phase == .running || hasUnsentWork) { try startMissingWorkers(s) } else { noteReadyWorkers() }
        if let broken = brokenError {
            while let c = try nextChunk(s, pullAll: pullAll, pulling: pulling) { deliver(s, c, error: .mp(broken)) }
        } else {
            while let w = pickWorker(), let c = try nextChunk(s, pullAll: pullAll, pulling: pulling) {
                send(c, to: w)
            }
            stealForIdleWorkers()
        }
        for case let w? in workers where w.hasOutput { w.flush() }
        if Trace.on { observed.traceBacklog(self) }
        if phase == .closed && !hasUnsentWork {
            for case let w? in workers where !w.inputClosed { w.closeInput() }
        }
    }

    /// The live worker with the fewest chunks in flight whose pipe has room. Chunks are sent
    /// eagerly, as far as the pipes take them, so workers go on while the host does anything
    /// else; stealing rebalances whenever the host pumps.
    private func pickWorker() -> PoolWorker? {
        var best: PoolWorker?
        for case let w? in workers where !w.inputClosed && !w.hasOutput && w.quota != 0 {
            if best == nil || w.inflight.count < best!.inflight.count { best = w }
        }
        return best
    }

    /// Work stealing: a worker with nothing to do takes half of the chunks queued right behind
    /// another worker's started chunk (at least one), so no task waits behind a long one while a
    /// worker idles, and a long queue is balanced in a few rounds. The status word decides
    /// atomically whether the victim already started any of them (`claim`/`steal`: one mark
    /// takes back every chunk up to the last one taken); a victim whose word does not show its
    /// head as started is left alone (see `WorkerStatusPage.stolen`).
    private func stealForIdleWorkers() {
        for case let idle? in workers where idle.inflight.isEmpty && !idle.inputClosed && idle.quota != 0 {
            for case let victim? in workers where victim !== idle && victim.inflight.count >= 2 {
                let cur = status.started(victim.slot)
                guard WorkerStatusPage.hasStarted(cur, victim.inflight[0].id) else { continue }
                var k = max(1, (victim.inflight.count - 1) / 2)
                if let q = idle.quota { k = min(k, q) }
                guard status.steal(victim.slot, expected: cur, victim.inflight[k].id) else { continue }
                let taken = victim.inflight[1...k]
                victim.inflight.removeSubrange(1...k)
                if let q = victim.quota { victim.quota = q + k }
                for c in taken { send(c, to: idle) }
                break
            }
        }
    }

    /// Sends `c` to `w`, stamped with a fresh chunk id (ids grow in send order, which the
    /// steal protocol relies on; a chunk re-sent after a death gets a new one).
    private func send(_ c: PoolChunk, to w: PoolWorker) {
        if w.functionGeneration != functions.generation {
            var f: [UInt8] = []
            let start = PoolFrame.begin(&f, kind: PoolFrame.clear)
            try? PoolFrame.finish(&f, from: start)
            w.send(f)
            w.functions.removeAll()
            w.functionGeneration = functions.generation
        }
        if w.functions.insert(c.function.id).inserted { w.send(c.function.defineFrame) }
        c.id = nextChunkID
        nextChunkID += 1
        if Trace.on && w.inflight.isEmpty { w.tracedAnswer = Trace.now() }
        PoolFrame.stampTask(&c.frame, id: c.id, start: UInt32(c.start), end: UInt32(c.end))
        w.send(c.frame)
        w.inflight.append(c)
        if let q = w.quota { w.quota = q - 1 }
    }

    /// The next chunk to send: re-queued ones first, then new input in submission order.
    /// Iterator input is read only for `pulling` (or all with `pullAll`), within the look-ahead.
    private func nextChunk(_ s: LuaStack, pullAll: Bool, pulling: PoolJob?) throws -> PoolChunk? {
        while let c = retry.popFirst() {
            if c.job.cancelled || c.job.done { drop(c); continue }
            return c
        }
        // Jobs still reading input, in submission order; those whose input ended (or that were
        // cancelled) leave `feeding` here. An iterator's Lua code may submit (appending) or pump.
        var i = 0
        while i < feeding.count {
            let job = feeding[i]
            guard let src = job.source, !job.cancelled else { feeding.remove(at: i); continue }
            if src.kind == .iterator && !pullAll && job !== pulling { i += 1; continue }
            if job.isImap && !pullAll && job.lookahead >= lookaheadLimit { i += 1; continue }
            if let c = makeChunk(s, job, src) { return c }
            if job.source != nil { i += 1 }    // else dropped when met again at `i`
        }
        return nil
    }

    /// Reads the next chunk of `job`'s input and encodes its `T` frame. Input errors (an
    /// unsendable item, an iterator that raised) become the job's failure at that position.
    /// Returns nil when the input ended or failed.
    private func makeChunk(_ s: LuaStack, _ job: PoolJob, _ src: ChunkSource) -> PoolChunk? {
        let L = s.L
        return s.preservingTop {
            _ = lua_rawgeti(L, s.registryIndex(), lua_Integer(src.ref))
            let input = s.top
            let position = src.next
            var count = 0
            var failure: JobError?
            let first = s.top + 1
            var frame: [UInt8] = []
            switch src.kind {
            case .list:
                count = min(src.size, src.count - position + 1)
                guard count > 0 else { return endInput(job) }
                if !job.perItem, Self.packedFrame(s, job, input: input, position: position, count: count, into: &frame) { break }
                guard s.checkStack(Int32(count) + 16) else {
                    failure = .mp(MPError("SendError", "chunk of \(count) items is too large for the Lua stack"))
                    break
                }
                for i in 0..<count { _ = lua_rawgeti(L, input, lua_Integer(position + i)) }
            case .iterator:
                while count < src.size {
                    guard s.checkStack(16) else { break }
                    s.pushValue(input)
                    if luamp_pcall(L, 0, 1, 0) != LUA_OK {
                        failure = .value(luaL_ref(L, s.registryIndex()))
                        break
                    }
                    if s.type(at: -1) == .nil { s.pop(); break }
                    count += 1
                }
                if count == 0 && failure == nil { return endInput(job) }
            }
            let seq = job.chunksMade
            job.chunksMade += 1
            src.next += count
            if src.kind == .list && src.next > src.count { job.source = nil }
            if failure != nil { job.source = nil }
            var refs: [(UInt64, SharedKind)] = []
            if failure == nil && frame.isEmpty {
                do {
                    frame.reserveCapacity(64 + count * 4)
                    let start = PoolFrame.begin(&frame, kind: PoolFrame.task)
                    PoolFrame.appendTaskHeader(&frame, function: job.function.id, mode: job.mode, count: UInt32(count),
                                               timeoutMs: job.timeoutMs, flags: job.perItem ? PoolFrame.perItem : 0,
                                               position: position)
                    (_, refs) = try SendLog.collectingReferences {
                        try Codec.encodeTuple(s, from: first, count: Int32(count), path: "input", into: &frame)
                        try PoolFrame.finishTask(&frame, from: start)
                    }
                } catch {
                    failure = .mp(Self.itemSendError(s, first: first, count: count, position: position, error))
                }
            }
            let chunk = PoolChunk(job: job, seq: seq, position: position, count: count,
                                  function: job.function, frame: frame)
            chunk.group.references = refs
            if let f = failure {
                deliver(s, chunk, error: f)
                return nil
            }
            return chunk
        }
    }

    /// The `T` frame of a chunk of plain numbers read straight from the input list (see
    /// `PoolNumbers`); false, with `frame` empty, when the chunk needs the general path.
    private static func packedFrame(_ s: LuaStack, _ job: PoolJob, input: Int32, position: Int, count: Int,
                                    into frame: inout [UInt8]) -> Bool {
        let start = PoolFrame.begin(&frame, kind: PoolFrame.task)
        PoolFrame.appendTaskHeader(&frame, function: job.function.id, mode: job.mode, count: UInt32(count),
                                   timeoutMs: job.timeoutMs, flags: 0, position: position)
        guard PoolNumbers.encodeList(s, input: input, position: position, count: count, into: &frame),
              (try? PoolFrame.finishTask(&frame, from: start)) != nil else { frame = []; return false }
        return true
    }

    /// Marks the input exhausted. Returns nil (no chunk).
    private func endInput(_ job: PoolJob) -> PoolChunk? {
        job.source = nil
        completeIfDone(job)
        return nil
    }

    /// The SendError of the first unsendable item of a chunk (items on the stack from `first`),
    /// named by its input position.
    private static func itemSendError(_ s: LuaStack, first: Int32, count: Int, position: Int, _ error: Error) -> MPError {
        for i in 0..<count {
            do { _ = try Codec.encode(s, at: first + Int32(i), path: "input[\(position + i)]") } catch let e as MPError { return e } catch {}
        }
        return (error as? MPError) ?? MPError("SendError", String(describing: error))
    }

    // MARK: receiving

    /// Polls result pipes, pidfds, status pipes and (when output is queued) task pipes for up to
    /// `ms`. Returns false when nothing was ready.
    @discardableResult
    private func waitForEvents(_ s: LuaStack, _ ms: Int32) throws -> Bool {
        pollFDs.removeAll(keepingCapacity: true)
        pollOwners.removeAll(keepingCapacity: true)
        for case let w? in workers {
            if w.resultFD >= 0 {
                pollFDs.append(pollfd(fd: w.resultFD, events: Int16(POLLIN), revents: 0)); pollOwners.append((w, 0))
            }
            if w.child.pidfd >= 0 {
                pollFDs.append(pollfd(fd: w.child.pidfd, events: Int16(POLLIN), revents: 0)); pollOwners.append((w, 1))
            }
            if w.hasOutput && w.taskFD >= 0 {
                pollFDs.append(pollfd(fd: w.taskFD, events: Int16(POLLOUT), revents: 0)); pollOwners.append((w, 2))
            }
            let status = w.child.statusDescriptor     // a failing initializer's report (drained, or it blocks)
            if status >= 0 {
                pollFDs.append(pollfd(fd: status, events: Int16(POLLIN), revents: 0)); pollOwners.append((w, 3))
            }
        }
        if pollFDs.isEmpty {
            if ms > 0 { var ts = timespec(tv_sec: 0, tv_nsec: Int(ms) * 1_000_000); _ = nanosleep(&ts, nil) }
            return false
        }
        let n = poll(&pollFDs, nfds_t(pollFDs.count), ms)
        if n <= 0 { return false }                             // timeout, or EINTR (the pump checks Ctrl-C)
        // Snapshots (no copy unless written meanwhile): handling a result allocates, so a
        // finalizer may run pool code that polls again (reusing pollFDs).
        let fds = pollFDs, owners = pollOwners
        var dead: [PoolWorker] = []
        for i in 0..<owners.count where fds[i].revents != 0 {
            let (w, what) = owners[i]
            let revents = fds[i].revents
            switch what {
            case 0:
                readResults(s, w)
                if w.child.pidfd < 0, revents & Int16(POLLHUP) != 0, !w.child.isAlive { dead.append(w) }
            case 1: dead.append(w)
            case 2: w.flush()
            default: w.child.drainStatus()
            }
        }
        for w in dead where workers[w.slot] === w { workerDied(s, w) }
        return true
    }

    /// Reads what the worker wrote and handles every complete frame. A protocol error stops the
    /// worker (SIGKILL); its death is then handled like any other.
    private func readResults(_ s: LuaStack, _ w: PoolWorker) {
        // Not re-entered for the same worker (a finalizer run while a frame is decoded may
        // pump): the frame being decoded lives in the inbox buffer.
        guard w.resultFD >= 0, !w.reading else { return }
        w.reading = true
        defer { w.reading = false }
        var budget = 64 << 20
        do {
            while budget > 0 && w.resultFD >= 0 {
                let r = try w.inbox.fill(w.resultFD)
                while let frame = try w.inbox.next() {
                    budget -= frame.count
                    try handleFrame(s, w, frame)
                }
                if r != .data { break }
            }
        } catch {
            fputs("luamp: pool worker pid \(w.child.pid) broke the protocol (\(error)); stopping it\n", luamp_stderr())
            try? w.child.kill()
            luamp_release_fd(w.resultFD)
            close(w.resultFD)
            w.resultFD = -1
        }
    }

    private func handleFrame(_ s: LuaStack, _ w: PoolWorker, _ frame: UnsafeRawBufferPointer) throws {
        var r = ByteReader(frame, from: 1)
        let id = try r.int(UInt64.self)
        guard let head = w.inflight.first, head.id == id else {
            throw PoolProtocolError("answer for chunk \(id), which it was not running")
        }
        if Trace.on { w.tracedAnswer = Trace.now() }
        switch frame[0] {
        case PoolFrame.result:
            w.inflight.removeFirst()
            if !head.job.perItem { deliver(s, head, bytes: r.rest) }   // per item: done with its last item
        case PoolFrame.failure:
            let e = try remoteError(s, &r, pid: w.child.pid, position: head.job.kind == .apply ? nil : head.position)
            w.inflight.removeFirst()
            deliver(s, head, error: e)
        case PoolFrame.item:
            let index = Int(try r.int(UInt32.self))
            let ok = try r.int(UInt8.self)
            guard index == head.start + head.answered, index < head.end else {
                throw PoolProtocolError("item \(index) of chunk \(id) out of order")
            }
            head.answered += 1
            if ok == 1 {
                deliverItem(s, head, index: index, bytes: r.rest)
            } else {
                deliverItem(s, head, index: index, error: try remoteError(s, &r, pid: w.child.pid, position: head.position))
            }
            itemSettled(head)
        default:
            throw PoolProtocolError("unknown frame kind \(frame[0])")
        }
    }

    /// A chunk's results arrived: copy them into the job's table at their positions.
    private func deliver(_ s: LuaStack, _ c: PoolChunk, bytes: UnsafeRawBufferPointer) {
        let job = c.job
        guard !job.done, !job.cancelled else { return drop(c) }
        let L = s.L
        let failure: JobError? = s.preservingTop {
            _ = lua_rawgeti(L, s.registryIndex(), lua_Integer(job.resultsRef))
            let results = s.top
            if job.kind != .apply,
               PoolNumbers.storeResults(s, bytes, results: results, position: c.position, count: c.count) { return nil }
            let n: Int32
            // A result message is decoded once: its handles' references become the host's holds.
            do { n = try SharedHolds.consuming { try Codec.decodeTuple(s, bytes) } } catch let e as MPError { return .mp(e) } catch { return .mp(MPError("DecodeError", "\(error)")) }
            if job.kind == .apply {
                var i = n
                while i >= 1 { lua_rawseti(L, results, lua_Integer(i)); i -= 1 }
                s.push(Int64(n)); s.rawSet(results, field: "n")
            } else {
                guard Int(n) == c.count else { return .mp(MPError("DecodeError", "a worker sent \(n) results for \(c.count) items")) }
                var i = c.count - 1
                while i >= 0 { lua_rawseti(L, results, lua_Integer(c.position + i)); i -= 1 }
            }
            return nil
        }
        finishChunk(c, failure)
    }

    /// A chunk failed (or could not be sent).
    func deliver(_ s: LuaStack, _ c: PoolChunk, error: JobError) {
        let job = c.job
        guard !job.done, !job.cancelled else {
            if case .value(let r) = error { garbage.append(r) }
            return drop(c)
        }
        finishChunk(c, error)
    }

    /// A chunk of a cancelled (or already finished) job came back or was skipped: count it,
    /// so the job leaves the pool once nothing of it is in flight.
    func drop(_ c: PoolChunk) {
        releaseReferences(of: c)
        let job = c.job
        guard !job.done else { return }
        job.chunksDone += 1
        if job.source == nil && job.chunksDone >= job.chunksMade {
            job.done = true
            jobs.remove(job)
        }
    }

    func finishChunk(_ c: PoolChunk, _ failure: JobError?) {
        let job = c.job
        releaseReferences(of: c)
        job.chunksDone += 1
        observed.chunkFinished(job, count: c.count, failed: failure != nil)
        if job.isImap {
            // The outcome owns an error's registry slot (the iterator frees it when it raises).
            let o = ChunkOutcome(seq: c.seq, position: c.position, count: c.count, error: failure)
            if job.kind == .imap { job.outcomes[c.seq] = o } else { job.arrivals.append(o) }
        } else if let f = failure {
            job.record(f, at: c.position)
        }
        completeIfDone(job)
    }

    /// Marks the job done once its input ended and every chunk has an outcome; queues its callback.
    func completeIfDone(_ job: PoolJob) {
        guard !job.done, job.source == nil, job.chunksDone == job.chunksMade else { return }
        job.done = true
        jobs.remove(job)
        if job.callbackRef != LUA_NOREF || job.errorCallbackRef != LUA_NOREF { callbacks.append(job) }
        job.hooks.completed(job)
    }

    // MARK: dead workers

    /// A worker ended: collect what it wrote, reap it, fail the task it had started with
    /// `WorkerLost`, re-queue the ones it had not started, and leave the slot for a replacement
    /// (started by the next `dispatch`).
    private func workerDied(_ s: LuaStack, _ w: PoolWorker) {
        readResults(s, w)
        PoolWorker.signalGroup(w, SIGKILL)   // what its task started (os.execute's shell, …)
        w.child.stop(grace: 1.0)
        // Killed by the timeout backstop: reported as its timer would have ended it.
        let code = w.overdue ? -SIGALRM : w.child.exitCode ?? -Int32(SIGKILL)
        w.closeAll()
        workers[w.slot] = nil
        let started = status.started(w.slot)
        let ready = status.isReady(w.slot)
        // Every answer it wrote has been read, so only the head can have been started; should an
        // answer have been missed, a chunk it may have run still fails rather than runs twice.
        let lost = w.inflight.filter { WorkerStatusPage.mayHaveStarted(started, $0.id) }
        retry.prepend(w.inflight.filter { !WorkerStatusPage.mayHaveStarted(started, $0.id) })
        w.inflight.removeAll()
        for c in lost { chunkLost(s, c, pid: w.child.pid, code: code) }
        observed.workerDied(w, lost: lost, code: code)
        if ready {
            if !w.ready { workerGotReady(w) }
        } else {
            startupFailed(w, code: code)
        }
    }

    static func describe(_ code: Int32) -> String { code < 0 ? "signal \(-code)" : "exit code \(code)" }

    /// `WorkerLost`: names the pid and the signal or exit code.
    static func workerLost(pid: pid_t, code: Int32) -> MPError {
        var fields: [(String, LuaValue)] = [("pid", .integer(Int64(pid)))]
        fields.append(code < 0 ? ("signal", .integer(Int64(-code))) : ("exitcode", .integer(Int64(code))))
        return MPError("WorkerLost", "worker pid \(pid) died (\(describe(code))) while running a task", fields)
    }

    // MARK: callbacks

    /// Runs due callbacks in the host (results pushed as `get` returns them). An error in a
    /// callback is raised by the pool call that ran it; the remaining callbacks run on the next pump.
    func runCallbacks(_ s: LuaStack) throws {
        while let job = callbacks.popFirst() {
            let ref = job.firstError == nil && !job.terminated ? job.callbackRef : job.errorCallbackRef
            guard ref != LUA_NOREF, !job.terminated else { continue }
            let L = s.L
            let base = s.top
            _ = lua_rawgeti(L, s.registryIndex(), lua_Integer(ref))
            let nargs: Int32
            if let (_, e) = job.firstError {
                pushError(s, e)
                nargs = 1
            } else {
                nargs = pushResults(s, job)
            }
            if luamp_pcall(L, nargs, 0, 0) != LUA_OK {
                let r = luaL_ref(L, s.registryIndex())
                s.top = base
                garbage.append(r)
                throw RegistryValueError(ref: r)
            }
            s.top = base
        }
    }

    /// Pushes a job error's value. Stack: [-0, +1].
    func pushError(_ s: LuaStack, _ e: JobError) {
        switch e {
        case .mp(let m): m.pushError(onto: s)
        case .value(let r): _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(r))
        }
    }

    /// Pushes what `get` returns: the results list (map), or every return value (apply).
    /// Returns how many values were pushed.
    func pushResults(_ s: LuaStack, _ job: PoolJob) -> Int32 {
        let L = s.L
        _ = lua_rawgeti(L, s.registryIndex(), lua_Integer(job.resultsRef))
        guard job.kind == .apply else { return 1 }
        let t = s.top
        let n = Int32(clamping: s.rawGet(t, field: "n") == .number ? (s.toInteger(-1) ?? 0) : 0)
        s.pop()
        s.checkStack(n + 2)
        if n > 0 { for i in 1...n { _ = lua_rawgeti(L, t, lua_Integer(i)) } }
        s.remove(t)
        return n
    }
}
