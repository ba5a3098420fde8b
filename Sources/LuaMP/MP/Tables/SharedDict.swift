// SharedDict: the arena hash table behind mp.Dict — open addressing, encoded entries, journaled updates.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A hash table in the arena. Layout of the header block:
/// `+0` UInt32 magic, `+8` robust mutex (structure), `+48` table offset, `+56` count (live
/// entries), `+64` used (live + tombstones), `+128` journal (SharedJournal, 128 bytes),
/// `+256` eight recursive robust mutexes (`with`/`incr` stripes, 48 bytes apart).
///
/// The table block: `+0` capacity (a power of two), slots from `+8`. A slot is one word:
/// 0 empty, 1 tombstone, else `hash32 << 32 | entry >> 4` (entries are 16-byte aligned and the
/// arena is at most 64 GiB, so 32 bits name one). Linear probing from `hash32 & (capacity - 1)`;
/// the load (used / capacity) stays at most 3/4; a rehash builds a new table and commits it
/// with one store.
///
/// An entry is an immutable block: `+0` hash, `+8` UInt32 key length, `+16` UInt64 value
/// length, `+24` key bytes (TableKey), then the value's codec bytes. Replacing a value
/// publishes a new entry in the slot and frees the old one; deleting leaves a tombstone (or an
/// empty slot when the next slot is empty). Every change is one `SharedJournal` record, so a
/// process killed mid-update leaves the table as before or as after the update.
struct SharedDict: TableStructure {
    static let magic = UInt32(LUAMP_MAGIC_DICT)
    static let bytes = 256 + 8 * 48
    static let tableAt = TableHeader.tableAt, countAt = TableHeader.countAt, usedAt: UInt64 = 64
    static let stripesAt = 256, stripes = 8
    static let minCapacity: UInt64 = 8
    static let entryHeader = 24

    static let drain = JournalDrain.dictSlots

    let header: TableHeader

    /// The stripe mutexes and the first table of a new Dict.
    static func setUp(_ h: TableHeader) throws {
        for i in 0..<stripes {
            _ = try RobustMutex.initialize(at: h.arena.pointer(h.offset) + stripesAt + 48 * i, kind: .recursive)
        }
        h.word(tableAt).pointee = try SharedDict(h.arena, h.offset).newTable(capacity: minCapacity)
    }

    private func tableWord(_ t: UInt64, _ i: Int) -> UnsafeMutablePointer<UInt64> {
        arena.pointer(t + 8 + UInt64(8 * i)).assumingMemoryBound(to: UInt64.self)
    }

    /// The `with`/`incr` stripe lock of a key hash.
    func stripe(_ h: UInt64) -> RobustMutex {
        RobustMutex(at: arena.pointer(offset) + SharedDict.stripesAt + 48 * Int((h >> 32) % UInt64(SharedDict.stripes)))
    }

    // MARK: entries

    /// Allocates, reserves (`SharedJournal.reserve`) and fills an entry. Mutex held; the next
    /// `put` consumes the reservation, or call `journal.cancel()` if the update fails.
    /// - Throws: `ArenaFull`.
    func makeEntry(hash h: UInt64, tag: UInt8, key: UnsafeRawBufferPointer,
                   value: UnsafeRawBufferPointer, more: UnsafeRawBufferPointer? = nil) throws -> UInt64 {
        let klen = 1 + key.count
        let vlen = value.count + (more?.count ?? 0)
        let e = try arena.allocate(SharedDict.entryHeader + klen + vlen)
        journal.reserve(e)
        let p = arena.pointer(e)
        p.storeBytes(of: h, as: UInt64.self)
        p.storeBytes(of: UInt32(klen), toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: UInt64(vlen), toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: tag, toByteOffset: SharedDict.entryHeader, as: UInt8.self)
        if key.count > 0 { memcpy(p + SharedDict.entryHeader + 1, key.baseAddress!, key.count) }
        if value.count > 0 { memcpy(p + SharedDict.entryHeader + klen, value.baseAddress!, value.count) }
        if let m = more, m.count > 0 { memcpy(p + SharedDict.entryHeader + klen + value.count, m.baseAddress!, m.count) }
        return e
    }

    /// The key bytes (tag first) and value bytes of entry `e`.
    func parts(_ e: UInt64) -> (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        let p = UnsafeRawPointer(arena.pointer(e))
        let klen = Int(p.load(fromByteOffset: 8, as: UInt32.self))
        let vlen = Int(p.load(fromByteOffset: 16, as: UInt64.self))
        return (UnsafeRawBufferPointer(start: p + SharedDict.entryHeader, count: klen),
                UnsafeRawBufferPointer(start: p + SharedDict.entryHeader + klen, count: vlen))
    }

    // MARK: probing (mutex held)

    /// Where key (tag, payload) with hash `h` is: `found` is its slot index, else `free` is the
    /// slot an insertion would use (the first tombstone on the probe path, or the empty slot).
    private func probe(_ t: UInt64, _ h: UInt64, _ tag: UInt8, _ key: UnsafeRawBufferPointer) -> (found: Int?, free: Int) {
        let cap = Int(arena.pointer(t).load(as: UInt64.self))
        let mask = cap - 1
        let h32 = h >> 32
        var i = Int(h32) & mask
        var tomb: Int? = nil
        while true {
            let slot = tableWord(t, i).pointee
            if slot == 0 { return (nil, tomb ?? i) }
            if slot == 1 {
                if tomb == nil { tomb = i }
            } else if slot >> 32 == h32 {
                let e = (slot & 0xffff_ffff) << 4
                let k = parts(e).key
                if k.count == key.count + 1, k[0] == tag,
                   key.count == 0 || memcmp(k.baseAddress! + 1, key.baseAddress!, key.count) == 0 {
                    return (i, i)
                }
            }
            i = (i + 1) & mask
        }
    }

    /// The entry of a key, or nil. Mutex held.
    func lookup(_ h: UInt64, _ tag: UInt8, _ key: UnsafeRawBufferPointer) -> UInt64? {
        let t = word(SharedDict.tableAt).pointee
        guard let i = probe(t, h, tag, key).found else { return nil }
        return (tableWord(t, i).pointee & 0xffff_ffff) << 4
    }

    // MARK: updates (mutex held)

    /// Publishes entry `e` (built by `makeEntry` for this key) in place of the key's current
    /// entry or as a new key. On a throw (`ArenaFull` while growing) nothing changed and `e` is
    /// still reserved (the caller cancels).
    func put(_ e: UInt64, _ h: UInt64, _ tag: UInt8, _ key: UnsafeRawBufferPointer) throws {
        var t = word(SharedDict.tableAt).pointee
        var p = probe(t, h, tag, key)
        if p.found == nil {
            let cap = arena.pointer(t).load(as: UInt64.self)
            let used = word(SharedDict.usedAt).pointee
            if (used + 1) * 4 > cap * 3 {
                try rehash(wanting: UInt64(count) + 1)
                journal.reserve(e)                  // the rehash's record replaced the reservation
                t = word(SharedDict.tableAt).pointee
                p = probe(t, h, tag, key)
            }
        }
        let slotOff = t + 8 + UInt64(8 * p.free)
        let old = tableWord(t, p.free).pointee
        let packed = (h >> 32) << 32 | (e >> 4)
        var r = JournalRecord(word: slotOff, before: old, after: packed, freeAbort: (e, 0))
        if p.found != nil {
            r.freeCommit = ((old & 0xffff_ffff) << 4, 0)
        } else {
            let c = word(SharedDict.countAt).pointee, u = word(SharedDict.usedAt).pointee
            r.aux1 = (offset + SharedDict.countAt, c, c + 1)
            r.aux2 = (offset + SharedDict.usedAt, u, old == 0 ? u + 1 : u)
        }
        journal.run(r)
    }

    /// Deletes a key. Returns false when it was absent.
    @discardableResult
    func remove(_ h: UInt64, _ tag: UInt8, _ key: UnsafeRawBufferPointer) -> Bool {
        let t = word(SharedDict.tableAt).pointee
        guard let i = probe(t, h, tag, key).found else { return false }
        let cap = Int(arena.pointer(t).load(as: UInt64.self))
        let old = tableWord(t, i).pointee
        let c = word(SharedDict.countAt).pointee, u = word(SharedDict.usedAt).pointee
        // The slot may become empty (not a tombstone) when no probe path runs through it.
        let last = tableWord(t, (i + 1) & (cap - 1)).pointee == 0
        journal.run(JournalRecord(word: t + 8 + UInt64(8 * i), before: old, after: last ? 0 : 1,
                                  aux1: (offset + SharedDict.countAt, c, c - 1),
                                  aux2: (offset + SharedDict.usedAt, u, last ? u - 1 : u),
                                  freeCommit: ((old & 0xffff_ffff) << 4, 0)))
        if cap > 64 && (c - 1) * 8 < UInt64(cap) { try? rehash(wanting: c - 1) }
        return true
    }

    /// Empties the dict: a fresh table is committed, then the old one's entries are freed.
    func clear() throws {
        let old = word(SharedDict.tableAt).pointee
        let fresh = try newTable(capacity: SharedDict.minCapacity)
        let c = word(SharedDict.countAt).pointee, u = word(SharedDict.usedAt).pointee
        journal.run(JournalRecord(word: offset + SharedDict.tableAt, before: old, after: fresh,
                                  aux1: (offset + SharedDict.countAt, c, 0), aux2: (offset + SharedDict.usedAt, u, 0),
                                  freeCommit: (old, 0), freeAbort: (fresh, 0), drain: old, drainKind: .dictSlots))
    }

    /// Rebuilds the table for `n` live entries (load ≤ 1/2, tombstones dropped) and commits it.
    private func rehash(wanting n: UInt64) throws {
        var cap = SharedDict.minCapacity
        while cap < 2 * n + 2 { cap *= 2 }
        let old = word(SharedDict.tableAt).pointee
        let fresh = try newTable(capacity: cap)
        let oldCap = Int(arena.pointer(old).load(as: UInt64.self))
        let mask = Int(cap) - 1
        for i in 0..<oldCap {
            let slot = tableWord(old, i).pointee
            guard slot > 1 else { continue }
            var j = Int(slot >> 32) & mask
            while tableWord(fresh, j).pointee != 0 { j = (j + 1) & mask }
            tableWord(fresh, j).pointee = slot
        }
        let u = word(SharedDict.usedAt).pointee
        journal.run(JournalRecord(word: offset + SharedDict.tableAt, before: old, after: fresh,
                                  aux1: (offset + SharedDict.usedAt, u, UInt64(count)),
                                  freeCommit: (old, 0), freeAbort: (fresh, 0)))
    }

    private func newTable(capacity: UInt64) throws -> UInt64 {
        let t = try arena.allocate(8 + 8 * Int(capacity), zeroed: true)
        arena.pointer(t).storeBytes(of: capacity, as: UInt64.self)
        return t
    }

    /// Calls `body(key, value)` for every entry (mutex held; `body` must not touch Lua).
    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        let t = word(SharedDict.tableAt).pointee
        let cap = Int(arena.pointer(t).load(as: UInt64.self))
        for i in 0..<cap {
            let slot = tableWord(t, i).pointee
            guard slot > 1 else { continue }
            let p = parts((slot & 0xffff_ffff) << 4)
            body(p.key, p.value)
        }
    }
}
