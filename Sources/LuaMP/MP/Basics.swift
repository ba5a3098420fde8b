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
                let deadline = Deadline(seconds: secs)
                _ = try HostWait.wait(s, label: "mp.sleep", deadline: deadline, fds: [], short: false, callbacks: false) {
                    deadline.hasPassed
                }
                return 0
            }
            try Clock.sleep(seconds: secs)
            return 0
        }
    }
}
