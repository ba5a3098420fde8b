// Clock: the monotonic clock in seconds (the Lua edge's unit), sleeps and the Ctrl-C check of every wait.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Time for the runtime: a monotonic clock and sleeps that Ctrl-C interrupts.
enum Clock {
    /// Called when this process is about to wait (`true`: a sleep, surely long): the trace
    /// recorder writes what it buffered, so a process killed while waiting loses nothing it
    /// did before. nil unless tracing was set up (`installObserve`, once per process).
    static let idleHook = ForkSafeLock<(@Sendable (Bool) -> Void)?>(nil)

    /// Runs the idle hook, if one is set (outside its lock).
    static func idle(long: Bool) {
        if let hook = idleHook.withLock({ $0 }) { hook(long) }
    }

    /// Seconds on CLOCK_MONOTONIC.
    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps `seconds` (`Deadline.wait`'s 100 ms slices), resuming after signals.
    /// - Throws: `LuaRaise("interrupted!")` when Ctrl-C arrives during the sleep.
    static func sleep(seconds: Double) throws {
        idle(long: true)
        try checkInterrupt()
        _ = try Deadline(seconds: seconds).wait { slice in
            if slice == 0 { return true }
            var ts = timespec(tv_sec: Int(slice / 1_000_000_000), tv_nsec: Int(slice % 1_000_000_000))
            _ = nanosleep(&ts, nil)
            return false
        }
    }

    /// Throws `interrupted!` if Ctrl-C arrived since the last check. (In a host interpreter,
    /// first chains mp's SIGINT flag to the host's handler: see `luamp_host.h`.)
    static func checkInterrupt() throws {
        luamp_host_follow_sigint()
        if luamp_take_interrupt() != 0 && luamp_host_claim_interrupt() != 0 { throw LuaRaise("interrupted!") }
    }
}
