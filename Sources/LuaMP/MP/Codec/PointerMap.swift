// PointerMap: the encoder's "already seen" set (object pointer → offset), open addressing, no per-insert allocation.

#if canImport(Glibc)
import Glibc
#endif

/// Maps Lua object addresses (`lua_topointer`) to the offset where the object was encoded.
/// Linear probing in a power-of-two table kept at most half full; storage is malloc'd lazily
/// and freed by `release()`.
struct PointerMap {
    private var keys: UnsafeMutablePointer<UInt>?
    private var values: UnsafeMutablePointer<Int>?
    private var mask = 0
    private(set) var count = 0

    func release() {
        free(keys)
        free(values)
    }

    @inline(__always)
    private static func slot(_ k: UInt, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(k) &* 0x9E37_79B9_7F4A_7C15) >> 20) & mask
    }

    /// The offset recorded for `p`, if any.
    @inline(__always)
    func get(_ p: UnsafeRawPointer) -> Int? {
        guard let keys else { return nil }
        let k = UInt(bitPattern: p)
        var i = PointerMap.slot(k, mask)
        while true {
            let e = keys[i]
            if e == k { return values![i] }
            if e == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    /// Records `p` → `offset` (`p` must not be present yet).
    mutating func insert(_ p: UnsafeRawPointer, _ offset: Int) {
        if keys == nil || (count + 1) * 2 > mask + 1 { grow() }
        let k = UInt(bitPattern: p)
        var i = PointerMap.slot(k, mask)
        while keys![i] != 0 { i = (i + 1) & mask }
        keys![i] = k
        values![i] = offset
        count += 1
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values, oldSize = keys == nil ? 0 : mask + 1
        let size = max(64, oldSize * 2)
        keys = calloc(size, MemoryLayout<UInt>.stride)!.assumingMemoryBound(to: UInt.self)
        values = malloc(size * MemoryLayout<Int>.stride)!.assumingMemoryBound(to: Int.self)
        mask = size - 1
        count = 0
        if let oldKeys, let oldValues {
            for i in 0..<oldSize where oldKeys[i] != 0 {
                insert(UnsafeRawPointer(bitPattern: oldKeys[i])!, oldValues[i])
            }
        }
        free(oldKeys)
        free(oldValues)
    }
}
