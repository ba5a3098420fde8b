// TableHeader: the header block Dict and List share — magic, structure mutex, table word, count, journal.
internal import LuaMPShims

/// The first 256 bytes of a Dict or a List: `+0` UInt32 magic, `+8` the robust structure mutex,
/// `+48` UInt64 offset of the current table, `+56` UInt64 count (a mirror of the table's,
/// readable without the lock), `+128` the `SharedJournal` record. Each structure adds its own
/// words after these (Dict: `+64` used slots, stripe mutexes from `+256`).
struct TableHeader {
    static let mutexAt = 8, tableAt: UInt64 = 48, countAt: UInt64 = 56, journalAt: UInt64 = 128

    let arena: Arena
    let offset: UInt64

    init(_ arena: Arena, _ offset: UInt64) { self.arena = arena; self.offset = offset }

    /// Allocates a zeroed block of `bytes` with the structure mutex initialized, lets `setUp`
    /// finish it (more mutexes, the first table into `word(tableAt)`), then publishes `magic`.
    /// The block is freed if any step throws. - Throws: `ArenaFull`, `LuaRaise` (a mutex).
    static func create(_ a: Arena, bytes: Int, magic: UInt32, _ setUp: (TableHeader) throws -> Void) throws -> UInt64 {
        let off = try a.allocate(bytes, zeroed: true)
        do {
            _ = try RobustMutex.initialize(at: a.pointer(off) + mutexAt, kind: .normal)
            try setUp(TableHeader(a, off))
        } catch {
            a.free(off)
            throw error
        }
        luamp_atomic_store32(a.pointer(off).assumingMemoryBound(to: UInt32.self), magic)
        return off
    }

    /// Frees the table, every entry (found as `drain` says) and the header: the last reference
    /// is gone. One journal record, so a kill half-way is finished by the next holder.
    static func release(_ a: Arena, _ off: UInt64, drain: JournalDrain) {
        let h = TableHeader(a, off)
        let t = h.word(tableAt).pointee
        h.journal.run(JournalRecord(word: off + tableAt, before: t, after: 0, freeCommit: (t, 0), drain: t, drainKind: drain))
        a.free(off)
    }

    /// The header word at byte `rel`.
    func word(_ rel: UInt64) -> UnsafeMutablePointer<UInt64> {
        arena.pointer(offset + rel).assumingMemoryBound(to: UInt64.self)
    }

    var journal: SharedJournal { SharedJournal(arena, at: offset + TableHeader.journalAt) }

    /// Live entries / elements (one atomic load, no lock).
    var count: Int { Int(luamp_atomic_load64(word(TableHeader.countAt))) }

    /// Runs `body` holding the structure mutex, repairing the structure first if a holder died.
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        let m = RobustMutex(at: arena.pointer(offset) + TableHeader.mutexAt)
        if m.lockShort() == .ownerDied { journal.recover() }
        defer { m.unlock() }
        return try body()
    }
}

/// Runs `body`, turning `ArenaFull` into a clear Lua error naming the operation
/// (`mp.Dict:set: the arena is full …`).
func fullArena<R>(_ kind: String, _ op: String, _ body: () throws -> R) throws -> R {
    do { return try body() } catch let e as ArenaFull { throw LuaRaise("\(kind):\(op): \(e)") }
}

/// Dict and List: a structure whose block starts with a `TableHeader`. The protocol gives both
/// one `create`, `release` and the header's words, journal, count and lock.
protocol TableStructure {
    /// The kind's magic (luamp_layouts.h) and the header block's size.
    static var magic: UInt32 { get }
    static var bytes: Int { get }
    /// How the table's entries are found when it is drained (`release`).
    static var drain: JournalDrain { get }
    /// Finishes a new block after the structure mutex: more mutexes, the first table.
    static func setUp(_ h: TableHeader) throws
    init(header: TableHeader)
    var header: TableHeader { get }
}

extension TableStructure {
    init(_ arena: Arena, _ offset: UInt64) { self.init(header: TableHeader(arena, offset)) }
    var arena: Arena { header.arena }
    var offset: UInt64 { header.offset }

    /// Allocates an empty structure. - Throws: `ArenaFull`, `LuaRaise` if a mutex cannot be initialized.
    static func create(_ a: Arena) throws -> Self {
        Self(a, try TableHeader.create(a, bytes: bytes, magic: magic, setUp))
    }

    /// Frees the table, every entry and the header (the last reference is gone).
    static func release(_ a: Arena, _ off: UInt64) { TableHeader.release(a, off, drain: drain) }

    /// The hooks a table kind starts from: freed by `release`, shown as `<Dict n=3>`.
    static func kindHooks(_ name: String) -> SharedKind.Hooks {
        let drain = drain
        return SharedKind.Hooks(release: { a, off in TableHeader.release(a, off, drain: drain) },
                                describe: { _, a, r in "<\(name) n=\(TableHeader(a, r.offset).count)>" })
    }

    func word(_ rel: UInt64) -> UnsafeMutablePointer<UInt64> { header.word(rel) }
    var journal: SharedJournal { header.journal }
    /// Live entries / elements (one atomic load, no lock).
    var count: Int { header.count }

    /// Runs `body` holding the structure mutex, repairing the structure first if a holder died.
    func locked<R>(_ body: () throws -> R) rethrows -> R { try header.locked(body) }
}

/// Byte strings copied out of a Dict or List under its mutex and read back after it is
/// released (decoding runs Lua, which must never happen with the mutex held): each part is a
/// UInt64 length then its bytes.
struct SnapshotBuffer {
    private var bytes: [UInt8] = []
    /// Records appended (a record is one part for a List, two for a Dict).
    private(set) var records = 0

    mutating func reserve(_ n: Int) { bytes.reserveCapacity(n) }

    /// Appends one record: `part`, then `second` if given.
    mutating func append(_ part: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer? = nil) {
        records += 1
        add(part)
        if let second { add(second) }
    }

    private mutating func add(_ p: UnsafeRawBufferPointer) {
        withUnsafeBytes(of: UInt64(p.count)) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: p)
    }

    /// Calls `body` with each part, in order.
    func forEachPart(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { b in
            var at = 0
            while at < b.count {
                let n = Int(b.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                try body(UnsafeRawBufferPointer(rebasing: b[(at + 8)..<(at + 8 + n)]))
                at += 8 + n
            }
        }
    }
}
