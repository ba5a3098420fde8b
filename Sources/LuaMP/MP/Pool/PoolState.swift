// PoolState: one pool's workers and life cycle (start, replace, close, join, terminate) — the host side of mp.Pool.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims
import Synchronization

/// The host's view of one worker: the process, its two pipe ends, what was sent and not answered.
extension PoolWorker {
    /// Sends `signal` to the worker's process group (the worker and whatever its tasks started
    /// that did not leave the group: `os.execute`'s shell and its command, …), so a timed-out,
    /// lost or terminated worker leaves nothing running. Only while the worker is not yet
    /// reaped: until then its pid — the group's id — cannot belong to anyone else.
    static func signalGroup(_ w: PoolWorker, _ signal: Int32) {
        guard w.child.exitCode == nil, w.child.isOwnedHere, w.child.pid > 0 else { return }
        _ = kill(-w.child.pid, signal)
    }
}

final class PoolWorker {
    let slot: Int
    let child: ChildProcess
    /// Host → worker (non-blocking write end); -1 once closed.
    @exclusivity(unchecked) var taskFD: Int32
    /// Worker → host (non-blocking read end); -1 once closed.
    @exclusivity(unchecked) var resultFD: Int32
    /// Bytes not yet written to `taskFD` (the pipe was full).
    @exclusivity(unchecked) var outbox: [UInt8] = []
    @exclusivity(unchecked) var outOffset = 0
    var inbox = FrameInbox()
    /// `readResults` is handling this worker's frames.
    @exclusivity(unchecked) var reading = false
    /// Chunks sent, in order, without an answer yet (the worker runs them in this order).
    @exclusivity(unchecked) var inflight = Ring<PoolChunk>()
    /// Function ids this worker has been sent (in `functionGeneration`).
    @exclusivity(unchecked) var functions: Set<UInt32> = []
    @exclusivity(unchecked) var functionGeneration = 0
    /// Chunks it may still be sent before `maxtasksperchild` retires it (nil: no limit).
    @exclusivity(unchecked) var quota: Int?
    /// The host closed `taskFD` (the worker exits after its current work).
    @exclusivity(unchecked) var inputClosed = false
    /// The host has seen its ready flag (initializer done).
    @exclusivity(unchecked) var ready = false
    /// Its process name (`PoolWorker-N`).
    var name = ""
    /// When the host last heard from it (wall µs, while tracing): a lost chunk's span starts here.
    var tracedAnswer: Int64 = 0
    /// The host killed it for running an item past its timeout (`killOverdueWorkers`).
    @exclusivity(unchecked) var overdue = false

    init(slot: Int, child: ChildProcess, taskFD: Int32, resultFD: Int32, quota: Int?) {
        self.slot = slot
        self.child = child
        self.taskFD = taskFD
        self.resultFD = resultFD
        self.quota = quota
    }

    deinit { inbox.release() }

    /// Closes the input pipe: the worker finishes what it has and exits.
    func closeInput() {
        guard taskFD >= 0 else { return }
        luamp_release_fd(taskFD)
        close(taskFD)
        taskFD = -1
        inputClosed = true
        outbox.removeAll()
        outOffset = 0
    }

    /// Closes both pipe ends (after the worker was reaped or when the pool ends).
    func closeAll() {
        closeInput()
        if resultFD >= 0 {
            luamp_release_fd(resultFD)
            close(resultFD)
            resultFD = -1
        }
    }

    var hasOutput: Bool { outOffset < outbox.count }

    /// Queues `bytes` for the worker, writing at once what the pipe takes.
    func send(_ bytes: [UInt8]) {
        guard taskFD >= 0 else { return }
        if !hasOutput {
            let n = bytes.withUnsafeBytes { PoolIO.writeSome(taskFD, $0.baseAddress!, $0.count) }
            if n < 0 { return }                      // worker gone: its pidfd will tell
            if n == bytes.count { return }
            outbox.removeAll(keepingCapacity: true)
            outOffset = 0
            outbox.append(contentsOf: bytes[n...])
            return
        }
        outbox.append(contentsOf: bytes)
    }

    /// Writes queued bytes while the pipe takes them.
    func flush() {
        guard taskFD >= 0, hasOutput else { return }
        let n = outbox.withUnsafeBytes { PoolIO.writeSome(taskFD, $0.baseAddress! + outOffset, $0.count - outOffset) }
        if n < 0 { outbox.removeAll(); outOffset = 0; return }
        outOffset += n
        if outOffset == outbox.count { outbox.removeAll(keepingCapacity: true); outOffset = 0 }
    }
}

/// One `mp.Pool`: a fixed number of forked workers, each with its own pipe pair, the chunks
/// waiting to be sent, and the jobs in progress. All work happens when the host *pumps*
/// (`PoolDispatcher.swift`): inside pool calls and mp waits, and — while the host runs its own
/// Lua — in the timer-armed background rounds of `PoolService`.
///
/// The bookkeeping touched for every task (here, in `PoolWorker` and `PoolJob`) is
/// `@exclusivity(unchecked)`: each access is a plain read or a mutating call that never calls
/// out (no Lua, no pump), so no two accesses can overlap, and the runtime check (~60
/// instructions per access, a fifth of the host's cost per task) buys nothing. The result
/// inbox, whose frames are handled while it is being read, keeps the check.
final class PoolState {
    enum Phase { case running, closed, terminated }

    let ownerPID = getpid()
    @exclusivity(unchecked) var phase = Phase.running
    let size: Int
    let maxTasksPerChild: Int?
    var initializerRef: Int32 = LUA_NOREF
    var initargsRef: Int32 = LUA_NOREF
    /// Workers by slot; nil while a slot waits for a replacement.
    @exclusivity(unchecked) var workers: [PoolWorker?]
    let status: WorkerStatusPage
    /// Chunks to send before reading new input (re-dispatched after a worker died).
    @exclusivity(unchecked) var retry = Ring<PoolChunk>()
    /// Jobs not yet done, in submission order.
    @exclusivity(unchecked) var jobs = JobList<PoolJob>()
    /// Jobs that may still have input to read (a list or iterator `source`), in submission
    /// order: what `nextChunk` reads from. A job whose input ended or that was cancelled is
    /// dropped from it when met (so finding the next input is not a scan of every job).
    @exclusivity(unchecked) var feeding = Ring<PoolJob>()
    /// Done jobs whose callback or error_callback is still to run.
    @exclusivity(unchecked) var callbacks = Ring<PoolJob>()
    var functions = FunctionCache()
    /// The id the next chunk sent is stamped with (ids grow in send order).
    @exclusivity(unchecked) var nextChunkID: UInt64 = 1
    /// Workers that failed to start (initializer error, exit, crash) in a row, with no new
    /// worker getting ready since; workers killed by someone else do not count.
    @exclusivity(unchecked) var initFailures = 0
    /// Set after `brokenAfter` such failures while no worker is ready: tasks fail with it at
    /// once (instead of waiting for ever) until a replacement gets ready.
    @exclusivity(unchecked) var brokenError: MPError?
    /// After a startup failure: no replacement is forked before this time (monotonic seconds;
    /// 0 when none is pending).
    @exclusivity(unchecked) var respawnAt = 0.0
    @exclusivity(unchecked) var pollFDs: [pollfd] = []
    @exclusivity(unchecked) var pollOwners: [(PoolWorker, Int)] = []
    /// When it was created (`MPModule.nextStartSequence`, set by `PoolRegistry.add`).
    var startSequence: UInt64 = 0
    /// Counters, progress and trace of this pool (`PoolObserve.swift`).
    var observed = PoolObservation()
    /// Pool-wide task defaults (`mp.Pool{task_timeout =, retries =}`).
    var defaultTimeoutMs: UInt32 = 0
    var defaultRetries = 0
    /// Its `HostWait` service (0: none) and whether that service is running now.
    var serviceToken = 0
    @exclusivity(unchecked) var servicing = false
    /// A background round (`PoolService`) is running: no forks, no callbacks, no progress drawing.
    @exclusivity(unchecked) var inBackground = false

    /// Startup failures in a row after which waiting tasks fail.
    static let brokenAfter = 3
    /// Longest wait between attempts to start a worker whose predecessors failed to start.
    static let maxRespawnDelay = 2.0

    /// Chunks sent ahead to each worker ("a few in flight" so workers never wait for the host).
    static let inflightPerWorker = 2
    /// The runtime that created the pool: its registry holds the pool's references.
    let runtime: RuntimeState
    /// Where the pool's registry slots are freed.
    var garbage: RegistryGarbage { runtime.garbage }

    /// Worker names count up per host process: PoolWorker-1, PoolWorker-2, … (atomic: runtimes
    /// on several threads of an embedding app start workers at once).
    static let workerCounter = Atomic<Int>(0)

    /// Creates the pool and forks its workers.
    /// - Throws: `LuaRaise` when a worker cannot be started (the others are stopped again).
    init(_ s: LuaStack, size: Int, maxTasksPerChild: Int?, initializerRef: Int32, initargsRef: Int32,
         observed: PoolObservation = PoolObservation()) throws {
        runtime = RuntimeState.of(s)
        self.observed = observed
        self.size = size
        self.maxTasksPerChild = maxTasksPerChild
        self.initializerRef = initializerRef
        self.initargsRef = initargsRef
        workers = Array(repeating: nil, count: size)
        status = try WorkerStatusPage(slots: size)
        do {
            for slot in 0..<size { try spawn(s, slot: slot) }
        } catch {
            terminate(s)
            throw error
        }
    }

    deinit {
        if isOwnedHere { status.unmap() }
    }

    var isOwnedHere: Bool { UInt32(bitPattern: ownerPID) == CurrentProcess.pid }

    /// Throws unless called in the process that created the pool.
    func checkOwner() throws {
        guard isOwnedHere else { throw LuaRaise("a Pool can only be used by the process that created it") }
    }

    /// Forks a worker into `slot`, from the host's state as it is now (globals, upvalues and
    /// loaded modules at this moment — replacements see later changes too).
    func spawn(_ s: LuaStack, slot: Int) throws {
        // Room for the two ends held here and the two ChildProcess holds: all are sure to be
        // closed in every later child.
        guard luamp_hold_reserve(4) == 0 else { throw LuaError.memory("not enough memory") }
        var task: [Int32] = [-1, -1]
        var result: [Int32] = [-1, -1]
        guard luamp_pipe_cloexec(&task) == 0 else { throw Self.pipeError() }
        guard luamp_pipe_cloexec(&result) == 0 else {
            close(task[0]); close(task[1])
            throw Self.pipeError()
        }
        // Big pipes move big chunks in fewer wake-ups; keep the total modest: past 64 MiB of pipe
        // buffers per user, new pipes get one page (pipe-user-pages-soft).
        let pipeSize: Int32 = size <= 8 ? 1 << 20 : 256 << 10
        _ = luamp_pipe_set_size(task[1], pipeSize)
        _ = luamp_pipe_set_size(result[1], pipeSize)
        _ = luamp_hold_fd(task[1])      // the host's ends: closed in every later child
        _ = luamp_hold_fd(result[0])
        status.reset(slot)
        let number = Self.workerCounter.add(1, ordering: .relaxed).newValue
        let config = WorkerConfig(slot: slot, name: "PoolWorker-\(number)", taskFD: task[0],
                                  resultFD: result[1], status: status, initializerRef: initializerRef,
                                  initargsRef: initargsRef, maxTasks: maxTasksPerChild, pool: observed.serial,
                                  labelOutput: observed.labelOutput)
        let parentName = ProcessTree.current.name
        let parentPID = getpid()
        let child: ChildProcess
        do {
            // SIGINT ignored from the fork on: a Ctrl-C never kills a worker, even a fresh one.
            child = try ChildProcess.spawn(ignoreInterrupts: true) { ctx in
                _ = setpgid(0, 0)   // its own process group: what its tasks start dies with it
                return PoolWorkerLoop.run(s, config, ctx, parentName: parentName, parentPID: parentPID)
            }
        } catch {
            for fd in [task[1], result[0]] { luamp_release_fd(fd) }
            for fd in task + result { close(fd) }
            throw error
        }
        _ = setpgid(child.pid, child.pid)   // also here, so the group exists before any kill
        close(task[0])
        close(result[1])
        _ = fcntl(task[1], F_SETFL, O_NONBLOCK)
        _ = fcntl(result[0], F_SETFL, O_NONBLOCK)
        workers[slot] = PoolWorker(slot: slot, child: child, taskFD: task[1], resultFD: result[0], quota: maxTasksPerChild)
        workers[slot]!.name = config.name
        observed.workerStarted(pid: child.pid, name: config.name, size: size)
    }

    // MARK: starting and replacing workers

    /// Forks workers into empty slots. While workers keep failing to start, replacements wait
    /// for the backoff (`respawnAt`) and start one at a time, until one gets ready.
    func startMissingWorkers(_ s: LuaStack) throws {
        noteReadyWorkers()
        if initFailures == 0 {
            for slot in 0..<size where workers[slot] == nil { try spawn(s, slot: slot) }
            return
        }
        guard Clock.monotonicSeconds() >= respawnAt else { return }
        guard !workers.contains(where: { $0 != nil && !$0!.ready }) else { return }   // one is starting
        if let slot = workers.firstIndex(where: { $0 == nil }) {
            respawnAt = 0
            try spawn(s, slot: slot)
        }
    }

    /// Notices workers whose initializer finished since the last look: the pool is healthy again.
    func noteReadyWorkers() {
        for case let w? in workers where !w.ready && status.isReady(w.slot) { workerGotReady(w) }
    }

    /// A new worker finished its initializer: startup failures are forgotten.
    func workerGotReady(_ w: PoolWorker) {
        w.ready = true
        initFailures = 0
        brokenError = nil
        respawnAt = 0
    }

    /// A worker ended before its initializer finished, with exit code `code` (-N: signal N).
    /// A kill from outside (SIGKILL, SIGTERM, …) is not a failure: the replacement starts at
    /// once. An initializer error, an exit (even with 0) or a crash of the worker's own
    /// making (SIGSEGV, SIGABRT, …) is: the next attempt waits 0.05 s, doubling up to
    /// `maxRespawnDelay`, and after `brokenAfter` in a row with no worker ready, waiting and
    /// new tasks fail with a `RemoteError` until a replacement gets ready.
    func startupFailed(_ w: PoolWorker, code: Int32) {
        if code < 0 && !Self.selfInflicted.contains(-code) { return }
        initFailures += 1
        let delay = min(Self.maxRespawnDelay, 0.05 * Double(1 << min(initFailures - 1, 10)))
        respawnAt = Clock.monotonicSeconds() + delay
        guard initFailures >= Self.brokenAfter, !workers.contains(where: { $0?.ready == true }) else { return }
        let why = code == 0 ? "the worker exited (exit code 0) before its initializer returned"
                            : "the worker died (\(Self.describe(code)))"
        let e = LuaError.splitTraceback(w.child.reportedMessage ?? why)
        var tb = ""
        if case .runtime(_, let t) = e { tb = t }
        let what = initializerRef != LUA_NOREF ? "pool initializer failed" : "pool workers failed to start"
        brokenError = MPError("RemoteError", "\(what) in \(initFailures) workers in a row (last: pid \(w.child.pid)): \(e.message)",
                              [("traceback", .string(tb)), ("pid", .integer(Int64(w.child.pid)))])
    }

    /// Signals a process gets from its own faults or limits (not sent by someone else).
    private static let selfInflicted: Set<Int32> = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP,
                                                     SIGXCPU, SIGXFSZ, SIGPIPE]

    private static func pipeError() -> LuaRaise {
        LuaRaise("cannot start a pool worker: pipe failed: \(String(cString: strerror(errno)))")
    }

    /// A job was submitted: it joins `jobs` (and `feeding` when it has input to read).
    func enqueue(_ job: PoolJob) {
        jobs.append(job)
        if job.source != nil { feeding.append(job) }
    }

    /// `close()`: no more submissions; workers exit once the work submitted so far is done.
    func closePool() {
        if phase == .running { phase = .closed }
    }

    /// `terminate()`: stops every worker now (SIGTERM, SIGKILL after 1 s), reaps them, and marks
    /// unfinished jobs terminated (their `get` raises). Callbacks of unfinished jobs never run.
    /// Never throws; a no-op outside the owning process.
    func terminate(_ s: LuaStack) {
        guard isOwnedHere, phase != .terminated else { return }
        phase = .terminated
        let live = workers.compactMap { $0 }
        if Trace.on { PoolTrace.letWorkersFlush(live) }
        for w in live { try? w.child.terminate(); PoolWorker.signalGroup(w, SIGTERM) }
        for w in live {
            w.closeAll()
            w.child.stop(grace: 1.0)
            for c in w.inflight { releaseReferences(of: c) }   // the workers are gone
            w.inflight.removeAll()
        }
        while let c = retry.popFirst() { releaseReferences(of: c) }
        workers = workers.map { _ in nil }
        for job in jobs where !job.done {
            job.terminated = true
            job.done = true
            job.source = nil
            job.hooks.completed(job)
        }
        jobs.removeAll()
        feeding.removeAll()
        retry.removeAll()
        callbacks.removeAll()
        functions.release(s)
        runtime.pools.remove(self)
    }

    /// Releases the registry references the pool holds (its `__gc`). Stack: [-0, +0].
    func releaseReferences(_ s: LuaStack) {
        for r in [initializerRef, initargsRef] where r != LUA_NOREF { luaL_unref(s.L, s.registryIndex(), r) }
        initializerRef = LUA_NOREF
        initargsRef = LUA_NOREF
        functions.release(s)
    }

    /// `join()` after `close()`: runs the remaining work (reading imap inputs to their end),
    /// lets the workers exit and reaps them.
    /// - Throws: misuse (`pool is still running`), `interrupted!` (the pool is then terminated).
    func join(_ s: LuaStack) throws {
        try checkOwner()
        switch phase {
        case .running:
            throw LuaRaise("cannot join a running pool: call close() or terminate() first")
        case .terminated:
            return
        case .closed:
            try pump(s, timeout: nil, pullAll: true, interruptCancelsAll: true) { [unowned self] in
                jobs.isEmpty && retry.isEmpty && workers.allSatisfy { $0 == nil }
            }
            runtime.pools.remove(self)
        }
    }
}

/// The pools alive in one runtime (`RuntimeState.pools`), so the end of its script terminates
/// them — only them: another runtime of the same process keeps its own.
final class PoolRegistry {
    private(set) var live: [PoolState] = []

    /// The pools of the runtime of `s`.
    static func of(_ s: LuaStack) -> PoolRegistry { RuntimeState.of(s).pools }

    func add(_ s: LuaStack, _ p: PoolState) {
        p.startSequence = MPModule.nextStartSequence(s)
        live.append(p)
        // Other waits (mp.wait, futures of other kinds) read this pool's results too.
        p.serviceToken = HostWait.addService(s, name: "Pool", fds: { [weak p] in p?.descriptors ?? [] }) { [weak p] s in
            guard let p, p.isOwnedHere, p.phase != .terminated, !p.servicing else { return }
            p.servicing = true
            defer { p.servicing = false }
            try p.pump(s, timeout: 0, callbacks: p.runtime.waits.serviceCallbacks, interrupts: false) { false }
        }
    }
    func remove(_ p: PoolState) {
        live.removeAll { $0 === p }
        if p.serviceToken != 0 { p.runtime.waits.removeService(p.serviceToken); p.serviceToken = 0 }
    }
}

extension MPModule {
    /// End of the main chunk: pools still open are terminated (Python's rule), only those this
    /// process created.
    static func finishPools(_ s: LuaStack) {
        let rt = RuntimeState.of(s)
        for p in rt.pools.live where p.isOwnedHere { p.terminate(s) }
        rt.garbage.collect(s)
        PoolService.release(s)
    }

    /// Terminates the pools this process created after `mark` that are not terminated or
    /// joined yet (called from `stopCapabilities`).
    static func stopPools(_ s: LuaStack, since mark: UInt64) {
        let rt = RuntimeState.of(s)
        for p in rt.pools.live where p.isOwnedHere && p.startSequence > mark { p.terminate(s) }
        rt.garbage.collect(s)
    }
}
