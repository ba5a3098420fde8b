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

    private struct State {
        var table: [UInt64: Hold] = [:]
        var deferred: [(offset: UInt64, generation: UInt64, kind: SharedKind)] = []
        /// Live children: pid → the fork generation it was started at.
        var children: [pid_t: UInt64] = [:]
        var owner: UInt32 = 0

        /// In a forked child the tables are the parent's: start empty. The inherited storage is
        /// overwritten, not released (releasing would write to the parent's heap pages:
        /// copy-on-write faults), as `ProcessTree.enterChild` does.
        mutating func claim() {
            let me = CurrentProcess.pid
            if owner == me { return }
            if owner != 0 {
                withUnsafeMutablePointer(to: &table) { $0.initialize(to: [:]) }
                withUnsafeMutablePointer(to: &deferred) { $0.initialize(to: []) }
                withUnsafeMutablePointer(to: &children) { $0.initialize(to: [:]) }
            }
            owner = me
        }

        func anyChildForked(after g: UInt64) -> Bool { children.values.contains { $0 > g } }
    }

    /// Runtimes may live on several threads of an embedding app: one lock around the tables.
    /// A plain pthread mutex, not `Synchronization.Mutex`: the latter keeps the owner's thread
    /// id, which a forked child sees wrong (its unlock then traps).
    private static let state = ForkSafeLock(State())

    /// Whether userdata of `kind` are counted at all (kinds without `release` are never freed).
    static func counts(_ kind: SharedKind) -> Bool { kind.hooks.release != nil }

    /// A new object this process made (its block's count of 1 is this hold).
    static func created(_ offset: UInt64, _ kind: SharedKind) {
        state.withLock { st in
            st.claim()
            st.table[offset] = Hold(count: 1, generation: CurrentProcess.forkGeneration, kind: kind)
        }
    }

    /// A decoded handle: one more userdata for this process's hold (taking the hold if needed).
    static func decoded(_ offset: UInt64, _ kind: SharedKind, _ a: Arena) {
        let consuming = SendLog.consuming
        state.withLock { st in
            st.claim()
            if st.table[offset] != nil {
                st.table[offset]!.count += 1
                if consuming { _ = a.releaseReference(offset) }      // our hold keeps it above 0
                return
            }
            if !consuming { a.retain(offset) }                       // else the message's becomes ours
            st.table[offset] = Hold(count: 1, generation: CurrentProcess.forkGeneration, kind: kind)
        }
    }

    /// A counted userdata of this process was collected.
    static func collected(_ offset: UInt64) {
        let ready: (UInt64, SharedKind)? = state.withLock { st in
            st.claim()
            guard var h = st.table[offset] else { return nil }
            h.count -= 1
            if h.count > 0 { st.table[offset] = h; return nil }
            st.table[offset] = nil
            if st.anyChildForked(after: h.generation) {
                st.deferred.append((offset, h.generation, h.kind))
                return nil
            }
            return (offset, h.kind)
        }
        if let (off, kind) = ready { release(off, kind) }
    }

    /// An encoding took a reference for its message (none in a dry run).
    static func messageReference(_ offset: UInt64, _ kind: SharedKind, _ a: Arena) {
        guard !SendLog.dryRun else { return }
        a.retain(offset)
        SendLog.referenced(offset, kind)
    }

    /// Undoes `messageReference` (the send failed).
    static func dropMessageReference(_ offset: UInt64, _ kind: SharedKind) {
        release(offset, kind, forget: false)
    }

    /// Runs `body` (a decode of a message that is decoded exactly once) so that its handles take
    /// over the message's references.
    static func consuming<R>(_ body: () throws -> R) rethrows -> R {
        try SendLog.consuming(body)
    }

    /// Called in the parent right after forking `pid`.
    static func childStarted(_ pid: pid_t) {
        state.withLock { st in
            st.claim()
            st.children[pid] = CurrentProcess.forkGeneration
        }
    }

    /// Called once `pid` was reaped: releases the deferred holds no live child can still use.
    static func childReaped(_ pid: pid_t) {
        let ready: [(offset: UInt64, generation: UInt64, kind: SharedKind)] = state.withLock { st in
            st.claim()
            guard st.children.removeValue(forKey: pid) != nil, !st.deferred.isEmpty else { return [] }
            let all = st.deferred
            st.deferred = all.filter { st.anyChildForked(after: $0.generation) }
            return all.filter { !st.anyChildForked(after: $0.generation) }
        }
        for d in ready { release(d.offset, d.kind) }
    }

    /// At the normal end of a child: drops every hold no live child still needs.
    static func releaseAtExit() {
        let ready: [(UInt64, SharedKind)] = state.withLock { st in
            st.claim()
            var out: [(UInt64, SharedKind)] = []
            for (off, h) in st.table where !st.anyChildForked(after: h.generation) { out.append((off, h.kind)) }
            for d in st.deferred where !st.anyChildForked(after: d.generation) { out.append((d.offset, d.kind)) }
            st.table = [:]
            st.deferred = []
            return out
        }
        for (off, kind) in ready { release(off, kind) }
    }

    /// Drops one reference (this process's hold, or a message's) and frees the object if it was
    /// the last.
    private static func release(_ offset: UInt64, _ kind: SharedKind, forget: Bool = true) {
        if forget { kind.hooks.forget?(offset) }
        guard let a = Arena.current else { return }
        if a.releaseReference(offset) {
            kind.hooks.forget?(offset)
            kind.hooks.release?(a, offset)
        }
    }

    /// Counted holds and deferred releases of this process (for tests: `mp._arena()`).
    static var stats: (holds: Int, deferred: Int) {
        state.withLock { st in
            st.claim()
            return (st.table.count, st.deferred.count)
        }
    }
}
