// Arena: the one shared memory region of a process tree, where every cross-process object lives.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A `MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE` region mapped once per process tree, before the
/// first fork, by the process that installs `mp`; every descendant inherits the same mapping
/// at the same address (see docs/shared-memory.md).
///
/// Objects in it (locks, semaphores, events, queue rings, `Value`/`Array` cells, messages) are
/// named by their **offset** (`UInt64`, never 0), so they can be created at any time and sent to
/// any process of the tree as a plain integer. The arena has a random 64-bit `id`; handles
/// carry it so an offset from another process tree is rejected.
///
/// The virtual size is large (64 GiB, smaller if the system refuses) but costs nothing until
/// pages are touched; large freed blocks give their pages back (`madvise(MADV_REMOVE)`).
/// Allocation: `allocate(_:)`/`free(_:)` in ArenaAllocator.swift.
///
/// Header layout (offset 0, one page, see `Arena.Header`): magic, id, size, the bump pointer,
/// statistics, the allocator's robust mutex and the free-list heads. Blocks start at 64 KiB.
struct Arena {
    /// The first byte of the mapping (same address in every process of the tree).
    let base: UnsafeMutableRawPointer
    /// Mapped bytes.
    let size: UInt64

    /// Offsets of the header fields.
    enum Header {
        static let magic = 0            // UInt64 "luampARN"
        static let id = 8               // UInt64 random arena id
        static let size = 16            // UInt64 mapped size
        static let bump = 24            // UInt64 first never-used offset
        static let bytesInUse = 32      // UInt64 approximate statistics
        static let blocksInUse = 40     // UInt64
        static let mutex = 64           // pthread_mutex_t, robust + shared
        static let smallFree = 128      // [UInt64] x smallClasses: free-list heads
        static let smallCursor = 192    // [UInt64] x smallClasses: carve cursor in the class's slab
        // 256 ..< 576: the large free-list heads of the first layout (40 power-of-two classes);
        // unused since large classes became finer, kept free so other fields stay where they were.
        static let largeFree = 4096     // [UInt64] x largeClasses (304): free-list heads, own page
        static let end = 4096 + 8 * 304
    }

    static let magicValue: UInt64 = 0x4e52_4150_6d61_756c   // "luampARN" little-endian
    /// Where blocks start (one slab in; the header needs less than a page).
    static let dataStart: UInt64 = 64 * 1024

    /// This process tree's arena: mapped on first use (by `installShared`, before any fork)
    /// and inherited by children together with the mapping. Thread-safe (a Swift `static let`
    /// is initialized once), so runtimes created on several threads share one arena.
    static var current: Arena? { mapping.arena }
    /// Why mapping failed, for the error message of a later `Arena.require()`.
    static var mapError: String? { mapping.error }

    private static let mapping: (arena: Arena?, error: String?) = Arena.map()

    /// The arena, or a clear error when it could not be mapped.
    /// - Throws: `LuaRaise` naming the mmap failure.
    static func require() throws -> Arena {
        if let a = current { return a }
        throw LuaRaise("mp shared memory is unavailable: \(mapError ?? "arena not mapped")")
    }

    /// Maps the arena if this process does not have one yet.
    /// - Returns: the arena, or nil if no size could be mapped (reason in `mapError`).
    @discardableResult
    static func installIfNeeded() -> Arena? { current }

    /// Tries 64 GiB, then smaller sizes down to 256 MiB. Wraps `mmap`.
    private static func map() -> (arena: Arena?, error: String?) {
        var want: UInt64 = 64 << 30
        var error: String?
        while want >= 256 << 20 {
            if let p = luamp_map_shared(Int(want)) {
                let a = Arena(base: p, size: want)
                a.format()
                luamp_sync_fast_set_arena(p, want)     // for the C fast paths (sync_fast.c)
                return (a, nil)
            }
            error = "mmap of \(want >> 20) MiB failed: \(String(cString: strerror(errno)))"
            want /= 2
        }
        return (nil, error)
    }

    /// Writes a fresh header (fresh mappings are zero-filled).
    private func format() {
        var rng = SystemRandomNumberGenerator()
        var id: UInt64 = 0
        while id == 0 { id = rng.next() }
        word(Header.id).pointee = id
        word(Header.size).pointee = size
        word(Header.bump).pointee = Arena.dataStart
        do {
            _ = try RobustMutex.initialize(at: base + Header.mutex, kind: .normal)
        } catch {
            preconditionFailure("cannot initialize the arena's mutex: \(error)")
        }
        luamp_atomic_store64(word(Header.magic), Arena.magicValue)
    }

    // MARK: addressing

    /// The random id of this process tree's arena (handles carry it).
    var id: UInt64 { word(Header.id).pointee }

    /// The address of `offset`. Offsets come from `allocate` or a validated handle.
    @inline(__always)
    func pointer(_ offset: UInt64) -> UnsafeMutableRawPointer {
        precondition(offset < size, "arena offset out of range")
        return base + Int(offset)
    }

    /// The offset of an address inside the arena.
    @inline(__always)
    func offset(of p: UnsafeRawPointer) -> UInt64 {
        let d = UInt64(UInt(bitPattern: p) &- UInt(bitPattern: base))
        precondition(d < size, "pointer outside the arena")
        return d
    }

    /// A header word (UInt64) at `byteOffset`.
    func word(_ byteOffset: Int) -> UnsafeMutablePointer<UInt64> {
        (base + byteOffset).assumingMemoryBound(to: UInt64.self)
    }

    /// The allocator's mutex.
    var mutex: RobustMutex { RobustMutex(at: base + Header.mutex) }
}

/// An `Arena` value is immutable (base address and size); the memory it names is shared by design
/// and synchronized by the objects living in it.
extension Arena: @unchecked Sendable {}
