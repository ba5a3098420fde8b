// LuaMemory: checks Swift code makes before it allocates a lot, so running out is Lua's memory error, not a trap.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Running out of memory under Swift frames must surface as Lua's memory error, never as a trap
/// (Swift's allocator aborts the process when `malloc` fails) nor as a raise over Swift frames
/// (a Lua allocation that fails raises). luamp's Lua allocator keeps a reserve (memory_shims.c)
/// that it spends when an allocation fails while Swift is the innermost frame, so that code can
/// finish; these checks are what that code does with it:
///
/// - `needReserve()` at the start of work that allocates from Swift,
/// - `checkNotLow()` between steps of a long walk: once the reserve is spent, the next Lua
///   allocation could raise, so the walk stops with Lua's memory error,
/// - `probe(_:)` before a big Swift allocation (a dictionary or a string of many bytes),
/// - a `Budget` for a walk that allocates from Swift in many small pieces.
enum LuaMemory {
    /// Swift allocations at least this big are probed first.
    static let probeThreshold = 64 << 10

    /// Lua's memory error, as Swift code throws it (the trampoline raises Lua's own error).
    static var error: LuaError { .memory("not enough memory") }

    /// Throws Lua's memory error unless the reserve is held (re-arming it when it was spent).
    static func needReserve() throws {
        if luamp_memory_reserve_armed() == 0 && luamp_memory_reserve_arm() == 0 { throw error }
    }

    /// Throws Lua's memory error when memory ran out under this frame (the reserve was spent).
    @inline(__always)
    static func checkNotLow() throws {
        if luamp_memory_low() != 0 { throw error }
    }

    /// Throws Lua's memory error unless `bytes` — plus a margin for the small allocations that
    /// follow — can be allocated now. Small sizes are not probed.
    static func probe(_ bytes: Int) throws {
        guard bytes >= probeThreshold else { return }
        let (want, overflow) = bytes.addingReportingOverflow(bytes / 8 + probeThreshold)
        guard !overflow, let p = malloc(want) else { throw error }
        free(p)
    }

    /// What a walk allocates from Swift in small pieces (a table of a million small tables):
    /// each `step` bytes spent, it checks that twice that much can still be allocated, so the
    /// pieces until the next check cannot fail.
    struct Budget {
        static let step = 1 << 20
        private var spent = 0

        /// Counts `bytes` about to be allocated. Throws Lua's memory error when a check fails.
        @inline(__always)
        mutating func spend(_ bytes: Int) throws {
            spent &+= bytes
            if spent >= Budget.step { try check() }
        }

        @inline(never)
        private mutating func check() throws {
            spent = 0
            guard let p = malloc(2 * Budget.step) else { throw LuaMemory.error }
            free(p)
        }
    }
}
