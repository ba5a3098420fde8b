// ForkSafeLock and PerProcess: the guarded homes of state that is truly per process.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A process-private `pthread_mutex_t` around a value; usable in a forked child (the lock is
/// never held across a fork: luamp forks only from its one thread, outside these sections).
/// `Sendable` because every access to the value goes through the mutex. Not
/// `Synchronization.Mutex`: it keeps the owner's thread id, which a forked child sees wrong (its
/// unlock then traps).
final class ForkSafeLock<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// State that belongs to one process, guarded for the threads of an embedding app: a forked
/// child starts from `initial` again instead of the copy it inherited (the copy is overwritten,
/// not released, so the child writes none of the parent's heap pages).
final class PerProcess<Value>: Sendable {
    private struct Owned {
        var owner: UInt32
        var value: Value
    }
    private let lock: ForkSafeLock<Owned>
    private let initial: @Sendable () -> Value

    init(_ initial: @escaping @Sendable () -> Value) {
        self.initial = initial
        lock = ForkSafeLock(Owned(owner: 0, value: initial()))
    }

    /// Runs `body` on this process's value, under the lock.
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try lock.withLock { o in
            let me = CurrentProcess.pid
            if o.owner != me {
                if o.owner != 0 { withUnsafeMutablePointer(to: &o.value) { $0.initialize(to: initial()) } }
                o.owner = me
            }
            return try body(&o.value)
        }
    }
}
