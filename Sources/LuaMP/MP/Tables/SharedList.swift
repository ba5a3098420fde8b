// SharedList: the arena sequence behind mp.List — a table of entry offsets, journaled updates.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A sequence in the arena. Header block: `+0` UInt32 magic, `+8` robust mutex, `+48` table
/// offset, `+56` count (a mirror of the table's, readable without the lock), `+128` journal.
/// Table block: `+0` capacity, `+8` count, entry offsets from `+16`. An entry: `+0` UInt64
/// length, then the value's codec bytes.
///
/// `append` and `pop()` commit with one store of the table's count, `l[i] = v` with one store
/// of the cell; `insert`, `pop(i)`, growing and `clear` build a new table and commit it with
/// one store of the table offset. Each is one `SharedJournal` record.
struct SharedList: TableStructure {
    static let magic = UInt32(LUAMP_MAGIC_LIST)
    static let bytes = 256
    static let tableAt = TableHeader.tableAt, countAt = TableHeader.countAt
    static let minCapacity = 8

    static let drain = JournalDrain.listItems

    let header: TableHeader

    /// The first table of a new List.
    static func setUp(_ h: TableHeader) throws {
        h.word(tableAt).pointee = try SharedList(h.arena, h.offset).newTable(capacity: minCapacity)
    }

    private func tw(_ t: UInt64, _ rel: Int) -> UnsafeMutablePointer<UInt64> {
        arena.pointer(t + UInt64(rel)).assumingMemoryBound(to: UInt64.self)
    }

    /// Allocates, reserves and fills an entry (mutex held; see `SharedDict.makeEntry`). - Throws: `ArenaFull`.
    func makeEntry(_ value: UnsafeRawBufferPointer, _ more: UnsafeRawBufferPointer?) throws -> UInt64 {
        let n = value.count + (more?.count ?? 0)
        let e = try arena.allocate(8 + n)
        journal.reserve(e)
        let p = arena.pointer(e)
        p.storeBytes(of: UInt64(n), as: UInt64.self)
        if value.count > 0 { memcpy(p + 8, value.baseAddress!, value.count) }
        if let m = more, m.count > 0 { memcpy(p + 8 + value.count, m.baseAddress!, m.count) }
        return e
    }

    func bytes(_ e: UInt64) -> UnsafeRawBufferPointer {
        let p = UnsafeRawPointer(arena.pointer(e))
        return UnsafeRawBufferPointer(start: p + 8, count: Int(p.load(as: UInt64.self)))
    }

    // MARK: mutex held

    private var table: UInt64 { word(SharedList.tableAt).pointee }
    private func n(_ t: UInt64) -> Int { Int(tw(t, 8).pointee) }
    private func cap(_ t: UInt64) -> Int { Int(tw(t, 0).pointee) }
    private func item(_ t: UInt64, _ i: Int) -> UnsafeMutablePointer<UInt64> { tw(t, 16 + 8 * i) }

    /// The entry at 0-based `i`, or nil when out of range.
    func entry(_ i: Int) -> UInt64? {
        let t = table
        guard i >= 0, i < n(t) else { return nil }
        return item(t, i).pointee
    }

    /// Entries in order.
    func forEach(_ body: (UnsafeRawBufferPointer) -> Void) {
        let t = table
        for i in 0..<n(t) { body(bytes(item(t, i).pointee)) }
    }

    private func mirror(_ before: Int, _ after: Int) -> (UInt64, UInt64, UInt64) {
        (offset + SharedList.countAt, UInt64(before), UInt64(after))
    }

    /// Replaces element `i` (0-based, in range) by entry `e`.
    func replace(_ i: Int, _ e: UInt64) {
        let t = table
        let old = item(t, i).pointee
        journal.run(JournalRecord(word: t + 16 + UInt64(8 * i), before: old, after: e, freeCommit: (old, 0), freeAbort: (e, 0)))
    }

    /// Appends entry `e`. - Throws: `ArenaFull` (growing); nothing changed then.
    func append(_ e: UInt64) throws {
        let t = table
        let c = n(t)
        if c < cap(t) {
            item(t, c).pointee = e          // beyond the count: invisible until the commit
            journal.run(JournalRecord(word: t + 8, before: UInt64(c), after: UInt64(c + 1),
                                      aux1: mirror(c, c + 1), freeAbort: (e, 0)))
            return
        }
        try rebuild(count: c + 1, freeAbort: e) { fresh in
            for j in 0..<c { item(fresh, j).pointee = item(t, j).pointee }
            item(fresh, c).pointee = e
        }
    }

    /// Inserts entry `e` before 0-based `i` (0…count).
    func insert(_ i: Int, _ e: UInt64) throws {
        let t = table
        let c = n(t)
        if i == c { return try append(e) }
        try rebuild(count: c + 1, freeAbort: e) { fresh in
            for j in 0..<i { item(fresh, j).pointee = item(t, j).pointee }
            item(fresh, i).pointee = e
            for j in i..<c { item(fresh, j + 1).pointee = item(t, j).pointee }
        }
    }

    /// Removes element `i` (0-based, in range); `value` sees its bytes first.
    func remove(_ i: Int, _ value: (UnsafeRawBufferPointer) -> Void) throws {
        let t = table
        let c = n(t)
        let old = item(t, i).pointee
        value(bytes(old))
        if i == c - 1 {
            journal.run(JournalRecord(word: t + 8, before: UInt64(c), after: UInt64(c - 1),
                                      aux1: mirror(c, c - 1), freeCommit: (old, 0)))
            return
        }
        try rebuild(count: c - 1, alsoFree: old) { fresh in
            for j in 0..<i { item(fresh, j).pointee = item(t, j).pointee }
            for j in (i + 1)..<c { item(fresh, j - 1).pointee = item(t, j).pointee }
        }
    }

    /// Empties the list: a fresh table is committed, then the old one's entries are freed.
    func clear() throws {
        let t = table
        let fresh = try newTable(capacity: SharedList.minCapacity)
        journal.run(JournalRecord(word: offset + SharedList.tableAt, before: t, after: fresh,
                                  aux1: mirror(n(t), 0), freeCommit: (t, 0), freeAbort: (fresh, 0),
                                  drain: t, drainKind: .listItems))
    }

    /// Builds a new table of `count` elements with `fill` and commits it in place of the old one.
    private func rebuild(count: Int, freeAbort e: UInt64 = 0, alsoFree: UInt64 = 0, _ fill: (UInt64) -> Void) throws {
        let t = table
        var c = SharedList.minCapacity
        while c < count { c *= 2 }
        let fresh = try newTable(capacity: c)
        fill(fresh)
        tw(fresh, 8).pointee = UInt64(count)
        journal.run(JournalRecord(word: offset + SharedList.tableAt, before: t, after: fresh,
                                  aux1: mirror(n(t), count), freeCommit: (t, alsoFree), freeAbort: (fresh, e)))
    }

    private func newTable(capacity: Int) throws -> UInt64 {
        let t = try arena.allocate(16 + 8 * capacity, zeroed: true)
        tw(t, 0).pointee = UInt64(capacity)
        return t
    }
}
