// PointerMap: the encoder's "already seen" set (object pointer → message offset), open addressing, no per-insert allocation.

#if canImport(Glibc)
import Glibc
#endif

/// Maps Lua object addresses (`lua_topointer`) to the message offset where the object was
/// encoded. Linear probing over one array of (key, value) pairs kept at most half full, so a
/// lookup usually touches one cache line; storage is malloc'd lazily and freed by `release()`.
struct PointerMap {
    private var slots: UnsafeMutablePointer<(key: UInt, value: Int)>?
    private var mask = 0
    private(set) var count = 0
    /// True once growing failed and an entry could not be recorded (the encoder then fails
    /// the pass with Lua's memory error).
    private(set) var failed = false

    func release() { free(slots) }

    @inline(__always)
    private static func slot(_ k: UInt, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(k) &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// The offset recorded for `p`, if any.
    @inline(__always)
    func get(_ p: UnsafeRawPointer) -> Int? {
        guard let slots else { return nil }
        let k = UInt(bitPattern: p)
        var i = PointerMap.slot(k, mask)
        while true {
            let e = slots[i]
            if e.key == k { return e.value }
            if e.key == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// Records `p` → `offset` (`p` must not be present yet).
    mutating func insert(_ p: UnsafeRawPointer, _ offset: Int) {
        if slots == nil || (count + 1) * 2 > mask + 1 {
            // Out of memory: a fuller table still works while one slot stays empty.
            if !grow() && (slots == nil || count + 2 > mask + 1) { failed = true; return }
        }
        let k = UInt(bitPattern: p)
        var i = PointerMap.slot(k, mask)
        while slots![i].key != 0 { i = (i + 1) & mask }
        slots![i] = (k, offset)
        count += 1
    }

    /// Grows 4× while small (fewer rehashes), 2× from 64 Ki slots on (less memory to clear).
    /// Returns false, changing nothing, when the bigger table cannot be allocated.
    private mutating func grow() -> Bool {
        let old = slots, oldSize = slots == nil ? 0 : mask + 1
        let size = oldSize == 0 ? 16 : oldSize * (oldSize < (1 << 16) ? 4 : 2)
        guard let fresh = calloc(size, MemoryLayout<(key: UInt, value: Int)>.stride) else { return false }
        slots = fresh.assumingMemoryBound(to: (key: UInt, value: Int).self)
        mask = size - 1
        count = 0
        if let old {
            for i in 0..<oldSize where old[i].key != 0 {
                insert(UnsafeRawPointer(bitPattern: old[i].key)!, old[i].value)
            }
        }
        free(old)
        return true
    }
}
