// SharedLock: the arena object behind mp.Lock and mp.RLock (robust mutex + owner pid + depth).
internal import LuaMPShims

/// A Lock or RLock in the arena. Layout (offsets):
/// `+0` UInt32 magic (`Lock` or `RLock`), `+8` Int32 owner pid (0 = free), `+12` UInt32 depth
/// (re-entry count, RLock), `+16` the robust error-checking `pthread_mutex_t`.
///
/// The mutex gives owner death (the kernel's robust list releases it when the holder dies); the
/// owner pid and depth are written only by the holder, after locking and before unlocking, so
/// relaxed atomics suffice (the mutex orders them); `describe` reads both without the mutex, so
/// every access is atomic (here and in `sync_fast.c`), never a plain load or store.
struct SharedLock {
    static let lockMagic = UInt32(LUAMP_MAGIC_LOCK)
    static let rlockMagic = UInt32(LUAMP_MAGIC_RLOCK)
    static let size = Int(LUAMP_LOCK_MUTEX_OFFSET) + RobustMutex.size

    let base: UnsafeMutableRawPointer
    var mutex: RobustMutex { RobustMutex(at: base + Int(LUAMP_LOCK_MUTEX_OFFSET)) }
    var ownerPid: UnsafeMutablePointer<UInt32> { (base + Int(LUAMP_LOCK_OWNER_OFFSET)).assumingMemoryBound(to: UInt32.self) }
    var depth: UnsafeMutablePointer<UInt32> { (base + Int(LUAMP_LOCK_DEPTH_OFFSET)).assumingMemoryBound(to: UInt32.self) }
    var isRecursive: Bool { base.load(as: UInt32.self) == SharedLock.rlockMagic }

    init(_ arena: Arena, _ offset: UInt64) { base = arena.pointer(offset) }

    /// Allocates and initializes a lock; returns its offset.
    /// - Throws: `ArenaFull`, or `LuaRaise` if the mutex cannot be initialized.
    static func create(recursive: Bool) throws -> UInt64 {
        let a = try Arena.require()
        let off = try a.allocate(size, zeroed: true)
        let l = SharedLock(a, off)
        do { _ = try RobustMutex.initialize(at: l.base + Int(LUAMP_LOCK_MUTEX_OFFSET), kind: .errorCheck) } catch { a.free(off); throw error }
        luamp_atomic_store32(l.base.assumingMemoryBound(to: UInt32.self), recursive ? rlockMagic : lockMagic)
        return off
    }

    /// True when this process holds the lock.
    var heldByMe: Bool { luamp_relaxed_load32(ownerPid) == CurrentProcess.pid && luamp_mutex_is_locked(mutex.mutex) != 0 }

    /// Python's `acquire(block, timeout)`.
    /// - Returns: `.acquired`, `.ownerDied` (the previous holder died holding it) or `.timedOut`.
    /// - Throws: `interrupted!`; for a Lock already held by this process and no deadline, a
    ///   clear deadlock error (Python would hang forever); pthread failures.
    func acquire(until deadline: Deadline) throws -> LockOutcome {
        let r: LockOutcome
        do {
            r = try mutex.lock(until: deadline)
        } catch is SelfDeadlock {
            if isRecursive {
                luamp_relaxed_store32(depth, luamp_relaxed_load32(depth) + 1)
                return .acquired
            }
            if deadline.isNever {
                throw LuaArgumentError(1, "deadlock: this process already holds the lock (use mp.RLock to re-enter)")
            }
            // Python waits out the timeout: nobody else can release our lock.
            let left = deadline.remaining
            if left > 0 { try Clock.sleep(seconds: Double(left) / 1e9) }
            return .timedOut
        }
        if r != .timedOut {
            luamp_relaxed_store32(ownerPid, CurrentProcess.pid)
            luamp_relaxed_store32(depth, 1)
        }
        return r
    }

    /// Releases one level (RLock) or the lock.
    /// - Throws: `LuaArgumentError` (argument 1, the lock: misuse is a `bad argument` error, see
    ///   docs/api.md "Errors") when this process does not hold it.
    func release() throws {
        let me = CurrentProcess.pid
        let owner = luamp_relaxed_load32(ownerPid)
        guard owner == me, luamp_mutex_is_locked(mutex.mutex) != 0 else {
            if isRecursive {
                throw LuaArgumentError(1, "cannot release un-acquired lock" + (owner != 0 && luamp_mutex_is_locked(mutex.mutex) != 0 ? " (it is held by process \(owner))" : ""))
            }
            throw LuaArgumentError(1, luamp_mutex_is_locked(mutex.mutex) != 0
                ? "cannot release a lock held by another process (pid \(owner))"
                : "cannot release un-acquired lock")
        }
        let d = luamp_relaxed_load32(depth)
        if d > 1 {
            luamp_relaxed_store32(depth, d - 1)
            return
        }
        luamp_relaxed_store32(depth, 0)
        luamp_relaxed_store32(ownerPid, 0)
        guard mutex.unlock() else { throw LuaArgumentError(1, "cannot release un-acquired lock") }
    }

    /// Releases every level (Condition.wait) and returns the depth to restore.
    /// - Throws: `LuaArgumentError` when this process does not hold it.
    func releaseAll() throws -> UInt32 {
        guard heldByMe else { throw LuaArgumentError(1, "cannot wait on un-acquired lock") }
        let d = luamp_relaxed_load32(depth)
        luamp_relaxed_store32(depth, 0)
        luamp_relaxed_store32(ownerPid, 0)
        mutex.unlock()
        return d
    }

    /// Re-takes the lock after `releaseAll` (no deadline, as Python) and restores the depth.
    /// A Ctrl-C while waiting is remembered and thrown only once the lock is held again, so the
    /// caller's `with` can still release it.
    /// - Throws: `interrupted!` (holding the lock), pthread failures.
    func reacquire(depth d: UInt32) throws {
        var interrupted = false
        while true {
            do {
                if try mutex.lock(until: Deadline(seconds: 0.1)) != .timedOut { break }
            } catch let e as LuaRaise where e.message == "interrupted!" {
                interrupted = true
            }
        }
        luamp_relaxed_store32(ownerPid, CurrentProcess.pid)
        luamp_relaxed_store32(depth, d)
        if interrupted { throw LuaRaise("interrupted!") }
    }

    /// `locked()`: held by anyone (a dead holder's lock reads as free).
    var isLocked: Bool { luamp_mutex_is_locked(mutex.mutex) != 0 }
}
