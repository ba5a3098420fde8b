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
/// The handlers and both values live in C (`luamp_track_pid_across_fork`), which the C fast
/// paths (sync_fast.c) read too, so a fork child runs no Swift for them.
/// glibc's `fork()` runs the handlers; `installForkHandlers` must run before the first fork
/// (it does: `mp` installs the shared layer before any process can start).
enum CurrentProcess {
    /// `getpid()`, cached.
    static var pid: UInt32 { luamp_self_pid() }
    /// Incremented in the parent before every fork.
    static var forkGeneration: UInt64 { luamp_fork_generation() }

    /// Registers the fork handlers once per process (children inherit them). Thread-safe.
    static func installForkHandlers() { _ = handlersInstalled }

    private static let handlersInstalled: Void = {
        let rc = luamp_track_pid_across_fork()
        precondition(rc == 0, "pthread_atfork failed: \(rc)")
    }()
}
