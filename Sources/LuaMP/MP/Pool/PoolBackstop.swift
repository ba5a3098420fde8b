// The host's timeout backstop: kills a worker whose item with a timeout ran past it when the worker's own timer could not.
#if canImport(Glibc)
import Glibc
#endif

extension PoolState {
    /// How long past an item's timeout the host waits for the worker's own timer (SIGALRM)
    /// before it kills the worker itself: the timer normally ends the item at once; the host
    /// steps in when a task defeated it (ignored, blocked or caught SIGALRM).
    static let backstopGraceNs: UInt64 = 500_000_000

    /// Kills (SIGKILL, its whole process group) every worker whose current item is more than
    /// `backstopGraceNs` past its deadline. Its death is then handled as a timer death: the item
    /// fails with `TimeoutError`, a replacement starts, the chunk's other items run. Runs at
    /// every pump round, so in any pool call, in the pool's `HostWait` service (mp.wait,
    /// mp.sleep, blocking mp calls) — at most ~100 ms late.
    func killOverdueWorkers() {
        var now: UInt64 = 0
        for case let w? in workers where !w.overdue {
            let d = status.itemDeadline(w.slot)
            guard d != 0 else { continue }
            if now == 0 { now = Deadline.monotonicNow() }
            guard now > d &+ Self.backstopGraceNs, status.ruleOverdue(w.slot, d) else { continue }
            w.overdue = true
            PoolWorker.signalGroup(w, SIGKILL)
        }
    }
}
