// CurrentProcess: this process's pid and fork generation, kept current across fork by pthread_atfork.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Cheap facts about the running process for hot paths (a lock's owner check must not cost a
/// `getpid` syscall per call).
///
/// `pthread_atfork` handlers keep them right: the prepare handler bumps `forkGeneration`
/// (so objects know a child may have inherited them) and the child handler refreshes `pid`.
/// glibc's `fork()` runs the handlers; `installForkHandlers` must run before the first fork
/// (it does: `mp` installs the shared layer before any process can start).
enum CurrentProcess {
    /// `getpid()`, cached.
    nonisolated(unsafe) static var pid: UInt32 = UInt32(getpid())
    /// Incremented in the parent before every fork.
    nonisolated(unsafe) static var forkGeneration: UInt64 = 0

    /// Registers the fork handlers once per process (children inherit them). Thread-safe.
    static func installForkHandlers() { _ = handlersInstalled }

    private static let handlersInstalled: Void = {
        pid = UInt32(getpid())
        luamp_sync_fast_set_pid(pid)            // the C fast paths (sync_fast.c) keep their own copy
        let rc = pthread_atfork({ CurrentProcess.forkGeneration &+= 1 }, nil, {
            CurrentProcess.pid = UInt32(getpid())
            luamp_sync_fast_set_pid(CurrentProcess.pid)
        })
        precondition(rc == 0, "pthread_atfork failed: \(rc)")
    }()
}
