// SharedJournal: the one-record redo/undo log that makes every Dict/List update all-or-nothing under kill -9.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// One pending change of a shared structure, described before it is made.
///
/// Every update of a `Dict` or `List` is a single **commit store** of one arena word (a hash
/// slot, a list cell, a table pointer or a count) plus bookkeeping around it: up to two
/// auxiliary counters to set, blocks to free once the commit happened (the replaced entry, the
/// old table) and blocks to free if it did not (the new entry, the new table). The structure's
/// robust mutex is held throughout. If the process dies anywhere in between, the next locker
/// gets `EOWNERDEAD` and calls `recover()`, which reads the commit word: equal to `after` means
/// the change happened (redo the bookkeeping), anything else means it did not (undo it). So the
/// update happened or it did not. New entries are allocated with the mutex held and `reserve`d
/// at once, so nothing leaks except in the few instructions between `allocate` returning and
/// `reserve` (or between clearing the record and a free), the window the arena allocator itself has.
struct JournalRecord {
    /// Arena offset of the commit word, its value before and its value after the change.
    var word: UInt64 = 0
    var before: UInt64 = 0
    var after: UInt64 = 0
    /// Auxiliary words (offset, before, after); offset 0 = unused.
    var aux1: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var aux2: (UInt64, UInt64, UInt64) = (0, 0, 0)
    /// Blocks freed when the change committed / when it did not (0 = none).
    var freeCommit: (UInt64, UInt64) = (0, 0)
    var freeAbort: (UInt64, UInt64) = (0, 0)
    /// A table whose entries are all freed once the change committed (`clear`), and its kind.
    var drain: UInt64 = 0
    var drainKind: JournalDrain = .none
}

/// How to find the entries of a table being drained.
enum JournalDrain: UInt64 {
    case none = 0
    /// A Dict table: `+0` capacity, slots from `+8`, slot = hash32 << 32 | entry >> 4 (0 empty, 1 tombstone).
    case dictSlots = 1
    /// A List table: `+0` capacity, `+8` count, entry offsets from `+16`.
    case listItems = 2
}

/// The journal: 16 words in the structure's header.
/// Layout (words): 0 active, 1 word, 2 before, 3 after, 4–6 aux1, 7–9 aux2, 10–11 freeCommit,
/// 12–13 freeAbort, 14 drain, 15 drainKind.
struct SharedJournal {
    static let bytes = 128
    let arena: Arena
    let base: UnsafeMutablePointer<UInt64>

    init(_ arena: Arena, at offset: UInt64) {
        self.arena = arena
        base = arena.pointer(offset).assumingMemoryBound(to: UInt64.self)
    }

    private func word(_ off: UInt64) -> UnsafeMutablePointer<UInt64> {
        arena.pointer(off).assumingMemoryBound(to: UInt64.self)
    }

    /// Protects a block just allocated for the next `run` (the caller holds the mutex): if the
    /// process dies before that run commits, recovery frees it. Call right after `allocate`.
    func reserve(_ block: UInt64) {
        base[1] = 0; base[4] = 0; base[7] = 0; base[13] = 0; base[14] = 0
        base[12] = block
        luamp_atomic_store64(base, 1)
    }

    /// Drops a reservation and frees its block (the update it was for failed).
    func cancel() {
        let b = base[12]
        luamp_atomic_store64(base, 0)
        if b != 0 { arena.free(b) }
    }

    /// Performs `r` (the caller holds the structure's mutex): record, commit store, bookkeeping, frees.
    /// The fields are written so that a recovery reading a half-written record still undoes
    /// correctly: `word` (0 = "not committed") goes last, aux values before aux offsets.
    func run(_ r: JournalRecord) {
        base[1] = 0
        base[2] = r.before; base[3] = r.after
        base[5] = r.aux1.1; base[6] = r.aux1.2; base[8] = r.aux2.1; base[9] = r.aux2.2
        base[4] = r.aux1.0; base[7] = r.aux2.0
        base[10] = r.freeCommit.0; base[11] = r.freeCommit.1
        base[12] = r.freeAbort.0; base[13] = r.freeAbort.1
        base[14] = r.drain; base[15] = r.drainKind.rawValue
        base[1] = r.word
        luamp_atomic_store64(base, 1)                         // the record is complete
        JournalFaults.reach(.beforeCommit)
        luamp_atomic_store64(word(r.word), r.after)           // the commit
        JournalFaults.reach(.afterCommit)
        finish(committed: true)
    }

    /// Called by the next locker after a holder died (`LockOutcome.ownerDied`): completes or
    /// undoes the change that was in progress, if any.
    func recover() {
        guard luamp_atomic_load64(base) != 0 else { return }
        finish(committed: base[1] != 0 && luamp_atomic_load64(word(base[1])) == base[3])
    }

    /// Applies the bookkeeping of the recorded change, clears the record, then frees.
    private func finish(committed: Bool) {
        for k in [4, 7] where base[k] != 0 {
            luamp_atomic_store64(word(base[k]), committed ? base[k + 2] : base[k + 1])
        }
        if committed && base[14] != 0 { drain(base[14], JournalDrain(rawValue: base[15]) ?? .none) }
        let frees = committed ? (base[10], base[11]) : (base[12], base[13])
        luamp_atomic_store64(base, 0)                         // nothing left to redo or undo
        JournalFaults.reach(.beforeFree)
        if frees.0 != 0 { arena.free(frees.0) }
        if frees.1 != 0 { arena.free(frees.1) }
    }

    /// Frees every entry of `table`, zeroing each reference before freeing it, so that a
    /// recovery after a death in this loop frees only what is left.
    private func drain(_ table: UInt64, _ kind: JournalDrain) {
        let t = word(table)
        switch kind {
        case .none: return
        case .dictSlots:
            let cap = Int(t[0])
            for i in 0..<cap {
                let slot = t[1 + i]
                guard slot > 1 else { continue }
                t[1 + i] = 0
                arena.free((slot & 0xffff_ffff) << 4)
                JournalFaults.reach(.inDrain)
            }
        case .listItems:
            let n = Int(t[1])
            for i in 0..<n {
                let e = t[2 + i]
                guard e != 0 else { continue }
                t[2 + i] = 0
                arena.free(e)
                JournalFaults.reach(.inDrain)
            }
        }
    }
}

/// Test-only fault injection (as `QueueFaults`): with `LUAMP_JOURNAL_FAULT=point:n` in luamp's
/// environment, the n-th time a *child* process reaches `point` inside a Dict/List update it
/// SIGKILLs itself. Points: `before-commit` (record written, commit store not done),
/// `after-commit` (committed, counters not updated), `in-drain` (`clear` half done),
/// `before-free` (record cleared, replaced blocks not freed yet: the one window that leaks).
/// Lets `Tests/cli/test_shared_crash.py` hit the moments random kills rarely land on.
enum JournalFaults {
    /// Point numbers 8…11 of `luamp_faults.h` (QueueFaults has 0…4).
    enum Point: Int32, FaultPoint {
        case beforeCommit = 8, afterCommit, inDrain, beforeFree
        static let names = ["before-commit", "after-commit", "in-drain", "before-free"]
    }

    /// Reads `LUAMP_JOURNAL_FAULT` once per process (when Dict/List are first installed).
    static func configure() { _ = configured }

    private static let configured: Void = Point.arm(fromEnvironment: "LUAMP_JOURNAL_FAULT")

    @inline(__always)
    static func reach(_ p: Point) { luamp_fault_reach(p.rawValue) }
}
