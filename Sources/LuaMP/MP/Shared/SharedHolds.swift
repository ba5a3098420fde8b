// SharedHolds: when an arena object may be freed — reference counts across the process tree.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// An arena object (a queue, a lock, …) is freed when nothing can reach it any more. Its block's
/// reference count (ArenaAllocator.swift) counts:
///
/// - **holds**: one per process that has userdata for it which it created or decoded itself
///   (however many such userdata it has: `table` counts them per process);
/// - **message references**: one per encoded handle (queue message, pipe message, `mp.dumps`
///   string). A *consuming* decode (`q:get`, `conn:recv`: each message is decoded once) turns the
///   message's reference into the receiver's hold. Other decodes (`mp.loads`, pool tasks, which
///   may be decoded again after a worker died) take a hold of their own and leave the message's
///   reference, so such an object lives as long as the arena — a leak, never a dangling handle.
///
/// **Fork.** A child inherits its parent's userdata without counting them: the parent's hold
/// covers them. So a process whose last userdata goes away while children forked *after* it took
/// the hold are still running (they may use the inherited userdata) defers the release until
/// they have been reaped (`deferred`, checked after every reap). Nothing is done at fork: starts
/// stay as cheap as before. The tree's discipline makes this sound: every child ends before its
/// parent reaps it, and grandchildren before their parent.
///
/// **Ends.** A child that ends normally drops its holds (`releaseAtExit`); a process killed
/// with SIGKILL keeps its holds forever (those objects leak, safely). The count saturates at
/// `Arena.pinned`; `pin` makes an object immortal (one another arena object points to, a Value
/// whose lock was handed out).
enum SharedHolds {
    /// One process's hold: how many of its userdata count, the fork generation when it took the
    /// hold (children forked later may have inherited them), and the object's kind.
    private struct Hold {
        var count: Int
        let generation: UInt64
        let kind: SharedKind
    }

    nonisolated(unsafe) private static var table: [UInt64: Hold] = [:]
    nonisolated(unsafe) private static var deferred: [(offset: UInt64, generation: UInt64, kind: SharedKind)] = []
    nonisolated(unsafe) private static var owner: UInt32 = 0
    /// True while a decode takes over the message's references (`consuming`).
    nonisolated(unsafe) private(set) static var isConsuming = false

    /// In a forked child the tables are the parent's: start empty. The inherited storage is
    /// overwritten, not released (releasing would write to the parent's heap pages: copy-on-write
    /// faults), as `ProcessTree.enterChild` does.
    @inline(__always)
    private static func claim() {
        let me = CurrentProcess.pid
        if owner == me { return }
        if owner != 0 {
            withUnsafeMutablePointer(to: &table) { $0.initialize(to: [:]) }
            withUnsafeMutablePointer(to: &deferred) { $0.initialize(to: []) }
        }
        owner = me
    }

    /// Whether userdata of `kind` are counted at all (kinds without `release` are never freed).
    static func counts(_ kind: SharedKind) -> Bool { kind.release != nil }

    /// A new object this process made (its block's count of 1 is this hold).
    static func created(_ offset: UInt64, _ kind: SharedKind) {
        claim()
        table[offset] = Hold(count: 1, generation: CurrentProcess.forkGeneration, kind: kind)
    }

    /// A decoded handle: one more userdata for this process's hold (taking the hold if needed).
    static func decoded(_ offset: UInt64, _ kind: SharedKind, _ a: Arena) {
        claim()
        if table[offset] != nil {
            table[offset]!.count += 1
            if isConsuming { _ = a.releaseReference(offset) }        // our hold keeps it above 0
            return
        }
        if !isConsuming { a.retain(offset) }                         // else the message's becomes ours
        table[offset] = Hold(count: 1, generation: CurrentProcess.forkGeneration, kind: kind)
    }

    /// A counted userdata of this process was collected.
    static func collected(_ offset: UInt64) {
        claim()
        guard var h = table[offset] else { return }
        h.count -= 1
        if h.count > 0 { table[offset] = h; return }
        table[offset] = nil
        drop(offset, h.generation, h.kind)
    }

    /// An encoding took a reference for its message (none in a dry run).
    static func messageReference(_ offset: UInt64, _ kind: SharedKind, _ a: Arena) {
        guard !SendLog.dryRun else { return }
        a.retain(offset)
        SendLog.referenced(offset, kind)
    }

    /// Undoes `messageReference` (the send failed).
    static func dropMessageReference(_ offset: UInt64, _ kind: SharedKind) {
        guard let a = Arena.current else { return }
        if a.releaseReference(offset) { free(offset, kind, a) }
    }

    /// Runs `body` (a decode of a message that is decoded exactly once) so that its handles take
    /// over the message's references.
    static func consuming<R>(_ body: () throws -> R) rethrows -> R {
        let old = isConsuming
        isConsuming = true
        defer { isConsuming = old }
        return try body()
    }

    /// After a child was reaped: releases the deferred holds no live child can still use.
    static func childReaped() {
        claim()
        guard !deferred.isEmpty else { return }
        var keep: [(offset: UInt64, generation: UInt64, kind: SharedKind)] = []
        let ready = deferred
        deferred = []
        for d in ready {
            if LiveChildren.anyForked(after: d.generation) { keep.append(d) } else { release(d.offset, d.kind) }
        }
        deferred.append(contentsOf: keep)
    }

    /// At the normal end of a child: drops every hold no live child still needs.
    static func releaseAtExit() {
        claim()
        let holds = table
        table = [:]
        for (off, h) in holds { drop(off, h.generation, h.kind) }
        childReaped()
    }

    /// This process's hold ends: now, or once the children that may have inherited it are gone.
    private static func drop(_ offset: UInt64, _ generation: UInt64, _ kind: SharedKind) {
        if LiveChildren.anyForked(after: generation) {
            deferred.append((offset, generation, kind))
        } else {
            release(offset, kind)
        }
    }

    private static func release(_ offset: UInt64, _ kind: SharedKind) {
        kind.forget?(offset)
        guard let a = Arena.current else { return }
        if a.releaseReference(offset) { free(offset, kind, a) }
    }

    private static func free(_ offset: UInt64, _ kind: SharedKind, _ a: Arena) {
        kind.forget?(offset)
        kind.release?(a, offset)
    }

    /// Counted holds and deferred releases of this process (for tests: `mp._arena()`).
    static var stats: (holds: Int, deferred: Int) {
        claim()
        return (table.count, deferred.count)
    }
}

/// The children this process started and has not reaped yet, with the fork generation each was
/// started at (`CurrentProcess.forkGeneration` right after its fork). `SharedHolds` asks whether
/// any of them was forked after a hold was taken.
enum LiveChildren {
    nonisolated(unsafe) private static var generations: [pid_t: UInt64] = [:]
    nonisolated(unsafe) private static var owner: UInt32 = 0

    @inline(__always)
    private static func claim() {
        let me = CurrentProcess.pid
        if owner == me { return }
        if owner != 0 { withUnsafeMutablePointer(to: &generations) { $0.initialize(to: [:]) } }
        owner = me
    }

    /// Called in the parent right after forking `pid`.
    static func started(_ pid: pid_t) {
        claim()
        generations[pid] = CurrentProcess.forkGeneration
    }

    /// Called when `pid` was reaped.
    static func reaped(_ pid: pid_t) {
        claim()
        if generations.removeValue(forKey: pid) != nil { SharedHolds.childReaped() }
    }

    /// True when a live child was forked after fork generation `g`.
    static func anyForked(after g: UInt64) -> Bool {
        claim()
        return generations.values.contains { $0 > g }
    }
}
