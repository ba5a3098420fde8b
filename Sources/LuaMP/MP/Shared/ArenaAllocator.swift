// ArenaAllocator: allocate and free blocks inside the shared arena (size classes, free lists, page return).
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Thrown when the arena has no room for a block (or the request is absurdly large).
struct ArenaFull: Error, CustomStringConvertible {
    let requested: Int
    var description: String { "mp shared memory exhausted (could not allocate \(requested) bytes)" }
}

/// Every block starts with a 16-byte header: `UInt32` state, `UInt32` reference count, and one
/// `UInt64` word — while allocated, the size class (high 16 bits) and the requested size (low 48
/// bits); while free, the free-list link. The caller's memory starts right after it (16-byte
/// aligned); the offset handed out is the offset of that memory.
///
/// - Small blocks (total 32 … 2048 bytes, powers of two) are carved from 64 KiB slabs with a
///   per-class cursor, and recycled through per-class free lists.
/// - Large blocks (total 4 KiB … `size/4`) are whole pages, start on a page boundary, come from
///   the bump pointer, and are recycled through per-class free lists. Classes: 4, 8, … 32 KiB,
///   then eight per doubling (36, 40, … 64 KiB, 72, 80, … 128 KiB, …, 1 MiB + 128 KiB, …), so a
///   block wastes at most 1/9 (11 %) of itself on rounding above 32 KiB (a 1 MiB message takes
///   1.125 MiB, not 2). When a large block of 64 KiB or more is freed, every page but its header
///   page is given back with `madvise(MADV_REMOVE)` (Shmem/RSS drop; the next user sees zeroes).
/// - The reference count (1 when allocated) is for objects several processes hold
///   (`retain`/`releaseReference`, see SharedHolds.swift); `allocate`/`free` ignore it, so code
///   that frees its blocks itself never needs it.
///
/// Crash tolerance: all changes happen under the arena's robust mutex, and each step commits
/// with one store (pop: `head = next`; push: `link = head` then `head = block`; carve: one cursor
/// store). A process killed inside `allocate`/`free` therefore leaves consistent lists and
/// leaks at most the block (or rest of a slab) it was working on; the next locker sees
/// `ownerDied` and simply continues.
extension Arena {
    static let blockHeader = 16
    static let slab: UInt64 = 64 * 1024
    static let page: UInt64 = 4096
    static let smallClasses = 7         // 32, 64, …, 2048
    /// Large classes: 8 page-multiple classes up to 32 KiB, then 8 per doubling up to 2^51 bytes.
    static let largeClasses = 8 + 8 * 37
    static let stateAllocated: UInt32 = 0x6141_504d   // "MPAa"
    static let stateFree: UInt32 = 0x6641_504d        // "MPAf"
    /// Large blocks at least this big give their pages back when freed.
    static let releaseThreshold: UInt64 = 64 * 1024
    /// A reference count at this value never drops: the object lives as long as the arena.
    static let pinned: UInt32 = .max
    private static let sizeMask: UInt64 = (1 << 48) - 1

    /// The large class for a block of `total` bytes (header included) and that class's size.
    static func largeClass(for total: UInt64) -> (cls: Int, size: UInt64) {
        if total <= 32 * 1024 {
            let k = Int((total + page - 1) / page) - 1
            return (max(k, 0), UInt64(max(k, 0) + 1) * page)
        }
        var base: UInt64 = 32 * 1024, unit: UInt64 = 4096, d = 0
        while total > base * 2 { base *= 2; unit *= 2; d += 1 }
        let j = Int((total - base + unit - 1) / unit) - 1
        return (8 + 8 * d + j, base + UInt64(j + 1) * unit)
    }

    /// The size of large class `cls`.
    static func largeSize(_ cls: Int) -> UInt64 {
        if cls < 8 { return UInt64(cls + 1) * page }
        let d = (cls - 8) / 8, j = (cls - 8) % 8
        return (UInt64(32 * 1024) << d) + UInt64(j + 1) * (UInt64(4096) << d)
    }

    /// The block size of class `cls` (small: 0 … 6, large: 16 + large class).
    private static func blockSize(_ cls: Int) -> UInt64 { cls < 16 ? 32 << cls : largeSize(cls - 16) }

    /// Allocates at least `bytes` bytes of shared memory (reference count 1).
    /// - Parameters:
    ///   - bytes: the size wanted (0 is allowed and gives a minimal block).
    ///   - zeroed: clear the memory (recycled small blocks hold old data; fresh and released
    ///     pages are already zero).
    /// - Returns: the offset of the memory (16-byte aligned, never 0).
    /// - Throws: `ArenaFull` when no room is left.
    func allocate(_ bytes: Int, zeroed: Bool = false) throws -> UInt64 {
        guard bytes >= 0, UInt64(bytes) <= size / 4 else { throw ArenaFull(requested: bytes) }
        let total = UInt64(bytes) + UInt64(Arena.blockHeader)
        let cls: Int
        let blockSize: UInt64
        if total <= 2048 {
            var k = 0
            while (UInt64(32) << k) < total { k += 1 }
            cls = k
            blockSize = 32 << k
        } else {
            let l = Arena.largeClass(for: total)
            guard l.cls < Arena.largeClasses else { throw ArenaFull(requested: bytes) }
            cls = 16 + l.cls
            blockSize = l.size
        }
        let m = mutex
        _ = m.lockShort()
        let block: UInt64
        do {
            defer { m.unlock() }
            block = try takeBlock(cls: cls, blockSize: blockSize)
        }
        let h = pointer(block)
        h.storeBytes(of: UInt64(cls) << 48 | UInt64(bytes), toByteOffset: 8, as: UInt64.self)
        h.storeBytes(of: UInt32(1), toByteOffset: 4, as: UInt32.self)
        h.storeBytes(of: Arena.stateAllocated, toByteOffset: 0, as: UInt32.self)
        _ = luamp_atomic_add64(word(Header.bytesInUse), blockSize)
        _ = luamp_atomic_add64(word(Header.blocksInUse), 1)
        let user = block + UInt64(Arena.blockHeader)
        if zeroed { memset(pointer(user), 0, Int(blockSize) - Arena.blockHeader) }
        return user
    }

    private func freeHead(_ cls: Int) -> UnsafeMutablePointer<UInt64> {
        cls < 16 ? word(Header.smallFree + 8 * cls) : word(Header.largeFree + 8 * (cls - 16))
    }

    /// Pops a free block of class `cls` or makes a new one. Called with the mutex held.
    private func takeBlock(cls: Int, blockSize: UInt64) throws -> UInt64 {
        let isSmall = cls < 16
        let head = freeHead(cls)
        let first = head.pointee
        if first != 0 {
            head.pointee = pointer(first).load(fromByteOffset: 8, as: UInt64.self)   // one store: pop
            return first
        }
        let bump = word(Header.bump)
        if isSmall {
            let cursor = word(Header.smallCursor + 8 * cls)
            let c = cursor.pointee
            if c != 0 && c % Arena.slab != 0 {
                cursor.pointee = c + blockSize                     // one store: carve
                return c
            }
            let start = (bump.pointee + Arena.slab - 1) / Arena.slab * Arena.slab
            guard start + Arena.slab <= size else { throw ArenaFull(requested: Int(blockSize)) }
            luamp_store64_relaxed(bump, start + Arena.slab)        // crash here leaks the slab
            cursor.pointee = start + blockSize
            return start
        }
        let start = bump.pointee
        guard start + blockSize <= size, start + blockSize > start else { throw ArenaFull(requested: Int(blockSize)) }
        luamp_store64_relaxed(bump, start + blockSize)   // atomic: isLiveBlock reads it without the mutex
        return start
    }

    /// Frees memory returned by `allocate` (whatever its reference count). Large blocks give
    /// their pages back first (`madvise(MADV_REMOVE)`, outside the mutex).
    /// - Precondition: `offset` came from `allocate` and was not freed yet (a double free or a
    ///   foreign offset is detected by the block header and trapped).
    func free(_ offset: UInt64) {
        precondition(offset >= Arena.dataStart + UInt64(Arena.blockHeader) && offset < size, "arena free of a bad offset")
        let block = offset - UInt64(Arena.blockHeader)
        let h = pointer(block)
        precondition(h.load(as: UInt32.self) == Arena.stateAllocated, "arena double free or bad offset")
        let cls = Int(h.load(fromByteOffset: 8, as: UInt64.self) >> 48)
        let blockSize = Arena.blockSize(cls)
        h.storeBytes(of: Arena.stateFree, toByteOffset: 0, as: UInt32.self)
        if cls >= 16 && blockSize >= Arena.releaseThreshold {
            let rc = luamp_release_pages(pointer(block + Arena.page), Int(blockSize - Arena.page))
            precondition(rc == 0, "madvise(MADV_REMOVE) failed: \(errno)")
        }
        _ = luamp_atomic_add64(word(Header.bytesInUse), 0 &- blockSize)
        _ = luamp_atomic_add64(word(Header.blocksInUse), 0 &- 1)
        let head = freeHead(cls)
        let m = mutex
        _ = m.lockShort()
        defer { m.unlock() }
        h.storeBytes(of: head.pointee, toByteOffset: 8, as: UInt64.self)   // link = head
        head.pointee = block                                               // one store: push
    }

    // MARK: reference counts

    private func countWord(_ offset: UInt64) -> UnsafeMutablePointer<UInt32> {
        (pointer(offset - UInt64(Arena.blockHeader)) + 4).assumingMemoryBound(to: UInt32.self)
    }

    /// Adds a reference to the live block at `offset` (no effect once pinned).
    func retain(_ offset: UInt64) {
        let p = countWord(offset)
        var v = luamp_atomic_load32(p)
        while v != Arena.pinned {
            let next = v == Arena.pinned - 1 ? Arena.pinned : v + 1        // saturates: pinned
            if luamp_atomic_cas32(p, v, next) != 0 { return }
            v = luamp_atomic_load32(p)
        }
    }

    /// Drops a reference to the block at `offset`.
    /// - Returns: true when that was the last one: the caller now frees the object.
    func releaseReference(_ offset: UInt64) -> Bool {
        let p = countWord(offset)
        var v = luamp_atomic_load32(p)
        while v != Arena.pinned {
            precondition(v > 0, "arena reference count underflow")
            if luamp_atomic_cas32(p, v, v - 1) != 0 { return v == 1 }
            v = luamp_atomic_load32(p)
        }
        return false
    }

    /// Makes the block at `offset` live as long as the arena (its reference count never drops).
    func pin(_ offset: UInt64) { luamp_atomic_store32(countWord(offset), Arena.pinned) }

    /// The block's reference count (`Arena.pinned` once pinned).
    func referenceCount(_ offset: UInt64) -> UInt32 { luamp_atomic_load32(countWord(offset)) }

    /// True when `offset` is the memory of a live (allocated, not freed) block of at least
    /// `minBytes` bytes: what handle decoders check before trusting an offset from a message.
    func isLiveBlock(_ offset: UInt64, minBytes: Int = 0) -> Bool {
        guard offset >= Arena.dataStart + UInt64(Arena.blockHeader), offset % 16 == 0,
              offset < luamp_atomic_load64(word(Header.bump)) else { return false }
        let h = pointer(offset - UInt64(Arena.blockHeader))
        guard h.load(as: UInt32.self) == Arena.stateAllocated else { return false }
        return h.load(fromByteOffset: 8, as: UInt64.self) & Arena.sizeMask >= UInt64(minBytes)
    }

    /// The size that was asked for when the block at `offset` was allocated.
    func requestedSize(_ offset: UInt64) -> Int {
        Int(pointer(offset - UInt64(Arena.blockHeader)).load(fromByteOffset: 8, as: UInt64.self) & Arena.sizeMask)
    }

    /// Approximate statistics: bytes held by live blocks (rounded to their classes) and their count.
    var usage: (bytes: UInt64, blocks: UInt64) {
        (luamp_atomic_load64(word(Header.bytesInUse)), luamp_atomic_load64(word(Header.blocksInUse)))
    }
}
