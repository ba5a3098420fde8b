// QueueFaults: test-only fault injection — SIGKILL a child process at a chosen point inside put/get.
internal import LuaMPShims

/// Lets `Tests/cli/test_queue_faults.py` kill a process at the exact moments the crash rules are
/// about (random `kill -9`s rarely land there). Set `LUAMP_QUEUE_FAULT=point:n` in the
/// environment of luamp: the n-th time any *child* process (never the one that read the
/// variable) reaches `point`, it SIGKILLs itself. Points: `put-before-commit` (record written
/// beyond the tail, lock held), `put-in-commit` / `get-in-commit` (journal marked valid, state not
/// yet updated), `get-before-commit` (message copied out, head not advanced), `get-after-commit`
/// (message taken, not yet returned). Without the variable this is one predictable branch.
enum QueueFaults {
    /// Point numbers 0…4 of `luamp_faults.h` (JournalFaults has 8…11).
    enum Point: Int32, FaultPoint {
        case putBeforeCommit, putInCommit, getBeforeCommit, getInCommit, getAfterCommit
        static let names = ["put-before-commit", "put-in-commit", "get-before-commit", "get-in-commit",
                            "get-after-commit"]
    }

    /// Reads `LUAMP_QUEUE_FAULT` once per process: every runtime installs queues, possibly on
    /// several threads, and a global `let` initializer runs once, thread-safely.
    static func configure() { _ = configured }

    private static let configured: Void = Point.arm(fromEnvironment: "LUAMP_QUEUE_FAULT")

    /// Called at each point; kills the calling child process on the configured hit.
    @inline(__always)
    static func reach(_ p: Point) { luamp_fault_reach(p.rawValue) }
}
