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

/// Every block starts with a 16-byte header: UInt32 state, UInt32 class, UInt64 free-list link.
/// The caller's memory starts right after it (16-byte aligned); the offset handed out is the
/// offset of that memory.
///
/// - Small blocks (total 32 … 2048 bytes, powers of two) are carved from 64 KiB slabs with a
///   per-class cursor, and recycled through per-class free lists.
/// - Large blocks (total 4 KiB … `size/4`, power-of-two page counts) start on a page boundary,
///   come from the bump pointer, and are recycled through per-class free lists. When a large
///   block of 64 KiB or more is freed, every page but its header page is given back with
///   `madvise(MADV_REMOVE)` (Shmem/RSS drop; the next user sees zeroes). Rounding to a power of
///   two costs only address space: untouched pages take no memory.
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
    static let largeClasses = 40        // 4 KiB << k
    static let stateAllocated: UInt32 = 0x6141_504d   // "MPAa"
    static let stateFree: UInt32 = 0x6641_504d        // "MPAf"
    /// Large blocks at least this big give their pages back when freed.
    static let releaseThreshold: UInt64 = 64 * 1024

    /// Allocates at least `bytes` bytes of shared memory.
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
            var k = 0
            while (Arena.page << k) < total { k += 1 }
            cls = 16 + k
            blockSize = Arena.page << k
        }
        let m = mutex
        _ = m.lockShort()
        let block: UInt64
        do {
            defer { m.unlock() }
            block = try takeBlock(cls: cls, blockSize: blockSize)
        }
        let h = pointer(block)
        h.storeBytes(of: UInt32(cls), toByteOffset: 4, as: UInt32.self)
        h.storeBytes(of: UInt64(bytes), toByteOffset: 8, as: UInt64.self)
        h.storeBytes(of: Arena.stateAllocated, toByteOffset: 0, as: UInt32.self)
        _ = luamp_atomic_add64(word(Header.bytesInUse), blockSize)
        _ = luamp_atomic_add64(word(Header.blocksInUse), 1)
        let user = block + UInt64(Arena.blockHeader)
        if zeroed { memset(pointer(user), 0, Int(blockSize) - Arena.blockHeader) }
        return user
    }

    /// Pops a free block of class `cls` or makes a new one. Called with the mutex held.
    private func takeBlock(cls: Int, blockSize: UInt64) throws -> UInt64 {
        let isSmall = cls < 16
        let head = isSmall ? word(Header.smallFree + 8 * cls) : word(Header.largeFree + 8 * (cls - 16))
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
            bump.pointee = start + Arena.slab                      // crash here leaks the slab
            cursor.pointee = start + blockSize
            return start
        }
        let start = bump.pointee
        guard start + blockSize <= size, start + blockSize > start else { throw ArenaFull(requested: Int(blockSize)) }
        bump.pointee = start + blockSize
        return start
    }

    /// Frees memory returned by `allocate`. Large blocks give their pages back first
    /// (`madvise(MADV_REMOVE)`, outside the mutex).
    /// - Precondition: `offset` came from `allocate` and was not freed yet (a double free or a
    ///   foreign offset is detected by the block header and trapped).
    func free(_ offset: UInt64) {
        precondition(offset >= Arena.dataStart + UInt64(Arena.blockHeader) && offset < size, "arena free of a bad offset")
        let block = offset - UInt64(Arena.blockHeader)
        let h = pointer(block)
        precondition(h.load(as: UInt32.self) == Arena.stateAllocated, "arena double free or bad offset")
        let cls = Int(h.load(fromByteOffset: 4, as: UInt32.self))
        let blockSize: UInt64 = cls < 16 ? 32 << cls : Arena.page << (cls - 16)
        h.storeBytes(of: Arena.stateFree, toByteOffset: 0, as: UInt32.self)
        if cls >= 16 && blockSize >= Arena.releaseThreshold {
            let rc = luamp_release_pages(pointer(block + Arena.page), Int(blockSize - Arena.page))
            precondition(rc == 0, "madvise(MADV_REMOVE) failed: \(errno)")
        }
        _ = luamp_atomic_add64(word(Header.bytesInUse), 0 &- blockSize)
        _ = luamp_atomic_add64(word(Header.blocksInUse), 0 &- 1)
        let head = cls < 16 ? word(Header.smallFree + 8 * cls) : word(Header.largeFree + 8 * (cls - 16))
        let m = mutex
        _ = m.lockShort()
        defer { m.unlock() }
        h.storeBytes(of: head.pointee, toByteOffset: 8, as: UInt64.self)   // link = head
        head.pointee = block                                               // one store: push
    }

    /// True when `offset` is the memory of a live (allocated, not freed) block of at least
    /// `minBytes` bytes: what handle decoders check before trusting an offset from a message.
    func isLiveBlock(_ offset: UInt64, minBytes: Int = 0) -> Bool {
        guard offset >= Arena.dataStart + UInt64(Arena.blockHeader), offset % 16 == 0,
              offset < luamp_atomic_load64(word(Header.bump)) else { return false }
        let h = pointer(offset - UInt64(Arena.blockHeader))
        guard h.load(as: UInt32.self) == Arena.stateAllocated else { return false }
        return h.load(fromByteOffset: 8, as: UInt64.self) >= UInt64(minBytes)
    }

    /// The size that was asked for when the block at `offset` was allocated.
    func requestedSize(_ offset: UInt64) -> Int {
        Int(pointer(offset - UInt64(Arena.blockHeader)).load(fromByteOffset: 8, as: UInt64.self))
    }

    /// Approximate statistics: bytes held by live blocks (rounded to their classes) and their count.
    var usage: (bytes: UInt64, blocks: UInt64) {
        (luamp_atomic_load64(word(Header.bytesInUse)), luamp_atomic_load64(word(Header.blocksInUse)))
    }
}
