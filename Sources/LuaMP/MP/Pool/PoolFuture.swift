// A pool job as a future (MPFuture): running, cancel (taking chunks back from workers), the pool's HostWait service.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension PoolJob: MPFuture {
    var isDone: Bool { done }
    var isRunning: Bool { !done && pool.isRunning(self) }

    func service(_ s: LuaStack) throws {
        guard pool.phase != .terminated || !done else { return }
        try pool.pump(s, timeout: 0) { self.done }
    }

    func pushResults(_ s: LuaStack) throws -> Int32 { try MPModule.results(s, self) }

    func pushException(_ s: LuaStack) {
        if terminated {
            MPError("RemoteError", "the pool was terminated before this task finished").pushError(onto: s)
        } else if let (_, e) = firstError {
            pool.pushError(s, e)
        } else {
            s.pushNil()
        }
    }

    func waitReady(_ s: LuaStack) throws -> Bool {
        try service(s)
        return done
    }

    func waitDescriptors() -> [Int32] { pool.descriptors }

    var waitFailed: Bool { terminated || firstError != nil }

    func cancel(_ s: LuaStack, force: Bool) throws -> Bool { try pool.cancel(s, self, force: force) }
}

extension PoolState {
    /// The result pipes and pidfds of the live workers (what a wait on this pool polls).
    var descriptors: [Int32] {
        var fds: [Int32] = []
        for case let w? in workers {
            if w.resultFD >= 0 { fds.append(w.resultFD) }
            if w.child.pidfd >= 0 { fds.append(w.child.pidfd) }
        }
        return fds
    }

    /// True when a worker has started a chunk of `job` (its oldest unanswered chunk, claimed).
    func isRunning(_ job: PoolJob) -> Bool {
        for case let w? in workers {
            guard let head = w.inflight.first, head.job === job else { continue }
            if WorkerStatusPage.hasStarted(status.started(w.slot), head.id) { return true }
        }
        return false
    }

    /// Takes back, from `w`, every chunk it was sent and has not started, up to and including
    /// its last chunk of `job` (exactly one of this and the worker's claim wins, per chunk).
    /// The taken chunks of other jobs go back to the front of the queue. Returns false when
    /// the only chunk of `job` it holds is the one it is running.
    private func takeBack(_ w: PoolWorker, _ job: PoolJob, into mine: inout [PoolChunk]) -> Bool {
        while true {
            guard let k = w.inflight.lastIndex(where: { $0.job === job }) else { return true }
            let cur = status.started(w.slot)
            let from = WorkerStatusPage.hasStarted(cur, w.inflight[0].id) ? 1 : 0
            guard k >= from else { return false }
            // The mark `id | stolen` takes back every chunk up to `id` the worker has not
            // started: those from `from` to `k` (ids grow along `inflight`).
            guard status.steal(w.slot, expected: cur, w.inflight[k].id) else { continue }
            let taken = Array(w.inflight[from...k])
            w.inflight.removeSubrange(from...k)
            if let q = w.quota { w.quota = q + taken.count }
            retry.prepend(taken.filter { $0.job !== job })
            mine += taken.filter { $0.job === job }
            return from == 0 || w.inflight.first?.job !== job
        }
    }

    /// `cancel()`: a task none of whose chunks has started or finished is taken back from the
    /// workers (or from the queue) and never runs: true. With `force`, workers running its
    /// chunks are killed as well (replaced as after a death). The job then fails with
    /// `CancelledError`. False when it is done, or started and not forced.
    func cancel(_ s: LuaStack, _ job: PoolJob, force: Bool) throws -> Bool {
        try checkOwner()
        guard !job.done else { return false }
        if !force && (job.chunksDone > 0 || isRunning(job)) { return false }
        var runners: [PoolWorker] = []
        var mine: [PoolChunk] = []
        for case let w? in workers where w.inflight.contains(where: { $0.job === job }) {
            if !takeBack(w, job, into: &mine) { runners.append(w) }
        }
        if !runners.isEmpty && !force {
            retry.prepend(mine)          // it started meanwhile: what was taken back is sent again
            return false
        }
        for w in runners { try? w.child.kill() }
        for c in mine { releaseReferences(of: c) }
        job.source = nil
        job.cancelled = true
        job.hooks.cancelled = true
        job.firstError.map { if case .value(let r) = $0.error { garbage.append(r) } }
        job.firstError = (0, .mp(MPError("CancelledError", force && !runners.isEmpty
            ? "the task was cancelled (its worker was stopped)" : "the task was cancelled before it started")))
        if job.isImap {   // results not yet taken from an interrupted imap are never taken
            for (_, o) in job.outcomes { if case .value(let r)? = o.error { garbage.append(r) } }
            while let o = job.arrivals.popFirst() { if case .value(let r)? = o.error { garbage.append(r) } }
            job.outcomes.removeAll()
            job.current = nil
        }
        job.done = true
        jobs.remove(job)
        job.hooks.completed(job)
        return true
    }
}
