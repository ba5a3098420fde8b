// RobustMutex: a process-shared, robust pthread mutex living in arena memory.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// How a lock attempt ended.
enum LockOutcome: Equatable {
    /// The caller holds the mutex.
    case acquired
    /// The caller holds the mutex, but its previous owner died holding it (SIGKILL, `_exit`);
    /// the mutex was made consistent again (`pthread_mutex_consistent`) and protected data
    /// may be half-updated.
    case ownerDied
    /// The deadline passed first.
    case timedOut
}

/// A `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` + `PTHREAD_MUTEX_ROBUST` in shared memory.
///
/// The value is only a pointer: the mutex itself lives in the arena (never in a Swift stored
/// property, which Swift may move), so every process of the tree that maps the arena locks the
/// same mutex. When a holder dies the kernel (robust futex list) marks the mutex and the next
/// locker gets `.ownerDied`.
///
/// Locks are per thread; luamp processes have one thread, so "owner" means "owning process".
struct RobustMutex {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Bytes a mutex needs in shared memory (`MemoryLayout<pthread_mutex_t>.size`, 40 on x86-64).
    static let size = MemoryLayout<pthread_mutex_t>.size

    /// Kinds of mutex (`PTHREAD_MUTEX_*`).
    enum Kind {
        case normal, errorCheck, recursive
        var raw: Int32 {
            switch self {
            case .normal: return luamp_mutex_type_normal()
            case .errorCheck: return luamp_mutex_type_errorcheck()
            case .recursive: return luamp_mutex_type_recursive()
            }
        }
    }

    /// Views the mutex at `pointer` (which must have been `initialize`d by some process).
    init(at pointer: UnsafeMutableRawPointer) {
        mutex = pointer.assumingMemoryBound(to: pthread_mutex_t.self)
    }

    /// Initializes a fresh mutex at `pointer` (shared, robust, of `kind`).
    /// Wraps `pthread_mutexattr_setpshared/setrobust/settype` + `pthread_mutex_init`.
    /// - Throws: `LuaRaise` with the pthread error if initialization fails.
    static func initialize(at pointer: UnsafeMutableRawPointer, kind: Kind = .errorCheck) throws -> RobustMutex {
        let m = pointer.bindMemory(to: pthread_mutex_t.self, capacity: 1)
        let rc = luamp_mutex_init_robust(m, kind.raw)
        guard rc == 0 else { throw LuaRaise("cannot create a shared mutex: \(String(cString: strerror(rc)))") }
        return RobustMutex(at: pointer)
    }

    /// One attempt without waiting (`pthread_mutex_trylock`).
    /// - Returns: `.acquired`, `.ownerDied` or `.timedOut` (busy).
    /// - Throws: `SelfDeadlock` when this process already holds an error-checking mutex;
    ///   `LuaRaise` when the mutex is unrecoverable or another pthread error occurs.
    func tryLock() throws -> LockOutcome {
        try outcome(pthread_mutex_trylock(mutex), busy: EBUSY)
    }

    /// Locks, waiting until `deadline`: a short spin, then `Deadline.wait`'s slices of at most
    /// 100 ms (`pthread_mutex_clocklock` on CLOCK_MONOTONIC), checking Ctrl-C between them.
    /// - Returns: `.acquired`, `.ownerDied` (the caller now holds a consistent mutex) or `.timedOut`.
    /// - Throws: `LuaRaise("interrupted!")` on Ctrl-C; `SelfDeadlock` when this process already
    ///   holds an error-checking mutex; `LuaRaise` for unrecoverable mutexes and pthread errors.
    func lock(until deadline: Deadline = .never) throws -> LockOutcome {
        let first = try tryLock()
        if first != .timedOut || deadline.hasPassed { return first }
        // The one spin policy first (luamp_spin.h), then sleeps in the kernel.
        let spun = try outcome(luamp_spin_trylock(mutex, EBUSY), busy: EBUSY)
        if spun != .timedOut { return spun }
        var result = LockOutcome.timedOut
        _ = try deadline.wait { slice in
            let end = Deadline.monotonicNow() &+ slice
            let rc = luamp_mutex_clocklock(mutex, Int64(end / 1_000_000_000), Int64(end % 1_000_000_000))
            result = try outcome(rc, busy: ETIMEDOUT)
            return result != .timedOut
        }
        return result
    }

    /// Locks without a deadline or Ctrl-C checks, for short internal critical sections
    /// (allocator, object bookkeeping) where the holder never blocks.
    /// - Returns: `.acquired` or `.ownerDied`.
    func lockShort() -> LockOutcome {
        let rc = pthread_mutex_lock(mutex)
        switch rc {
        case 0: return .acquired
        case EOWNERDEAD:
            let c = pthread_mutex_consistent(mutex)
            precondition(c == 0, "pthread_mutex_consistent failed: \(c)")
            return .ownerDied
        default:
            preconditionFailure("pthread_mutex_lock on an internal mutex failed: \(rc)")
        }
    }

    /// Unlocks (`pthread_mutex_unlock`).
    /// - Returns: false when this process does not hold the mutex (`EPERM`, error-checking and
    ///   recursive mutexes only).
    @discardableResult
    func unlock() -> Bool {
        let rc = pthread_mutex_unlock(mutex)
        if rc == 0 { return true }
        precondition(rc == EPERM, "pthread_mutex_unlock failed: \(rc)")
        return false
    }

    private func outcome(_ rc: Int32, busy: Int32) throws -> LockOutcome {
        switch rc {
        case 0: return .acquired
        case busy, EBUSY, ETIMEDOUT, EINTR: return .timedOut
        case EOWNERDEAD:
            let c = pthread_mutex_consistent(mutex)
            guard c == 0 else { throw LuaRaise("pthread_mutex_consistent failed: \(String(cString: strerror(c)))") }
            return .ownerDied
        case EDEADLK: throw SelfDeadlock()
        case ENOTRECOVERABLE: throw LuaRaise("shared mutex is not recoverable (a previous owner died and it was not repaired)")
        default: throw LuaRaise("shared mutex lock failed: \(String(cString: strerror(rc)))")
        }
    }
}

/// Thrown when a process tries to lock an error-checking mutex it already holds (`EDEADLK`).
/// Callers turn it into their own behaviour (Lock: wait out the timeout or report the deadlock).
struct SelfDeadlock: Error {}
