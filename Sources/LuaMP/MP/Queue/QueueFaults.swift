// QueueFaults: test-only fault injection — SIGKILL a child process at a chosen point inside put/get.
#if canImport(Glibc)
import Glibc
#endif

/// Lets `Tests/cli/test_queue_faults.py` kill a process at the exact moments the crash rules are
/// about (random `kill -9`s rarely land there). Set `LUAMP_QUEUE_FAULT=point:n` in the
/// environment of luamp: the n-th time any *child* process (never the one that read the
/// variable) reaches `point`, it SIGKILLs itself. Points: `put-before-commit` (record written
/// beyond the tail, lock held), `put-in-commit` / `get-in-commit` (journal marked valid, state not
/// yet updated), `get-before-commit` (message copied out, head not advanced), `get-after-commit`
/// (message taken, not yet returned). Without the variable this is one predictable branch.
enum QueueFaults {
    enum Point: String { case putBeforeCommit = "put-before-commit", putInCommit = "put-in-commit",
                              getBeforeCommit = "get-before-commit", getInCommit = "get-in-commit",
                              getAfterCommit = "get-after-commit" }

    nonisolated(unsafe) private(set) static var armed: Point? = nil
    nonisolated(unsafe) private static var countdown = 0
    nonisolated(unsafe) private static var hostPID: pid_t = 0

    /// Reads `LUAMP_QUEUE_FAULT` once per process: every runtime installs queues, possibly on
    /// several threads, and a global `let` initializer runs once, thread-safely.
    static func configure() { _ = configured }

    private static let configured: Void = {
        guard let v = getenv("LUAMP_QUEUE_FAULT") else { return }
        let parts = String(cString: v).split(separator: ":")
        guard parts.count == 2, let p = Point(rawValue: String(parts[0])), let n = Int(parts[1]), n > 0 else { return }
        armed = p
        countdown = n
        hostPID = getpid()
    }()

    /// Called at each point; kills the calling child process on the configured hit.
    @inline(__always)
    static func reach(_ p: Point) {
        if let a = armed, a == p { hit() }
    }

    @inline(never)
    private static func hit() {
        guard getpid() != hostPID else { return }
        countdown -= 1
        if countdown == 0 { kill(getpid(), SIGKILL) }
    }
}
