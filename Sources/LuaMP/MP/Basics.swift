// mp basics: version, pid, cpu count, monotonic clock and an interruptible sleep.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

extension MPModule {
    static func installBasics(_ s: LuaStack, _ t: Int32) {
        s.push(version)
        s.rawSet(t, field: "version")
        s.setFunction(t, "getpid") { s in s.push(Int64(getpid())); return 1 }
        s.setFunction(t, "cpu_count") { s in s.push(Int64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))); return 1 }
        s.setFunction(t, "monotonic") { s in s.push(Clock.monotonicSeconds()); return 1 }
        s.setFunction(t, "sleep") { s in
            let secs = try s.checkNumber(1)
            guard secs >= 0, secs.isFinite else { throw LuaArgumentError(1, "non-negative number expected") }
            if HostWait.hasServices(s) {
                // A pool is alive: it reads results, sends what did not fit in the pipes and
                // replaces dead workers while the host sleeps (no Lua callback runs here).
                let deadline = Clock.monotonicSeconds() + secs
                _ = try HostWait.wait(s, label: "mp.sleep", deadline: deadline, fds: [], short: false, callbacks: false) {
                    Clock.monotonicSeconds() >= deadline
                }
                return 0
            }
            try Clock.sleep(seconds: secs)
            return 0
        }
    }
}

/// Time for the runtime: a monotonic clock and sleeps that Ctrl-C interrupts.
enum Clock {
    /// Called when this process is about to wait (`true`: a sleep, surely long): the trace
    /// recorder writes what it buffered, so a process killed while waiting loses nothing it
    /// did before. nil unless tracing was set up (`installObserve`).
    nonisolated(unsafe) static var idleHook: ((Bool) -> Void)?

    /// Seconds on CLOCK_MONOTONIC.
    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps `seconds`, resuming after signals.
    /// - Throws: `LuaRaise("interrupted!")` when Ctrl-C arrives during the sleep.
    static func sleep(seconds: Double) throws {
        idleHook?(true)
        let deadline = monotonicSeconds() + seconds
        while true {
            try checkInterrupt()
            let left = min(deadline - monotonicSeconds(), 0.1)   // 100 ms slices: Ctrl-C is noticed
            if left <= 0 { return }
            var ts = timespec(tv_sec: 0, tv_nsec: Int(left * 1e9))
            _ = nanosleep(&ts, nil)
        }
    }

    /// Throws `interrupted!` if Ctrl-C arrived since the last check. (In a host interpreter,
    /// first chains mp's SIGINT flag to the host's handler: see `luamp_host.h`.)
    static func checkInterrupt() throws {
        luamp_host_follow_sigint()
        if luamp_take_interrupt() != 0 && luamp_host_claim_interrupt() != 0 { throw LuaRaise("interrupted!") }
    }
}
