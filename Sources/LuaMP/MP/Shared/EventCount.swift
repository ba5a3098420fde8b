// EventCount: a futex "eventcount" in shared memory — how waiters sleep across processes.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A 32-bit sequence word plus a waiter count (8 bytes of shared memory) used instead of
/// `pthread_cond_t`, which hangs the next signaller forever when a waiter is SIGKILLed inside
/// `pthread_cond_wait` (docs/shared-memory.md, "Event count").
///
/// Protocol: a waiter reads `prepare()` (the current sequence), checks its condition (usually
/// under a `RobustMutex`), releases the mutex, then `wait(seen:until:)`; a notifier changes the
/// state and calls `notify`, which bumps the sequence and `FUTEX_WAKE`s only when someone
/// waits. A waiter killed while sleeping leaves the waiter count one too high, which only
/// costs a spare wake-up syscall later: nobody is harmed.
///
/// Layout (offsets from `base`): `+0` UInt32 sequence, `+4` UInt32 waiters.
struct EventCount {
    /// The sequence word (the futex word).
    let sequence: UnsafeMutablePointer<UInt32>
    let waiters: UnsafeMutablePointer<UInt32>

    /// Bytes an event count needs in shared memory (4-byte aligned).
    static let size = 8

    /// Views the event count at `pointer`.
    init(at pointer: UnsafeMutableRawPointer) {
        sequence = pointer.assumingMemoryBound(to: UInt32.self)
        waiters = (pointer + 4).assumingMemoryBound(to: UInt32.self)
    }

    /// Zeroes a fresh event count at `pointer`.
    static func initialize(at pointer: UnsafeMutableRawPointer) -> EventCount {
        let e = EventCount(at: pointer)
        luamp_atomic_store32(e.sequence, 0)
        luamp_atomic_store32(e.waiters, 0)
        return e
    }

    /// The current sequence: read it before checking the condition you will wait for.
    func prepare() -> UInt32 { luamp_atomic_load32(sequence) }

    /// Sleeps until the sequence differs from `seen` or `deadline` passes (`Deadline.wait`: in
    /// slices of at most 100 ms; between slices it checks Ctrl-C and calls `poll` (if given),
    /// which may end the wait early by returning true, e.g. "a peer died").
    /// Wraps `FUTEX_WAIT` (shared) on the sequence word.
    /// - Returns: true if the sequence changed (or `poll` said stop), false if the deadline passed.
    /// - Throws: `LuaRaise("interrupted!")` on Ctrl-C, or what `poll` throws.
    func wait(seen: UInt32, until deadline: Deadline, poll: (() throws -> Bool)? = nil) throws -> Bool {
        _ = luamp_atomic_add32(waiters, 1)
        defer { _ = luamp_atomic_sub32(waiters, 1) }
        return try deadline.wait(stop: poll) { slice in
            EventCount.sleep(on: sequence, while: seen, for: slice)
        }
    }

    /// The futex half of every arena wait (this event count, Semaphore, Event): true when
    /// `*word != seen`; else, when `slice > 0`, one `FUTEX_WAIT` (shared) of at most `slice`
    /// nanoseconds and the check again. Callers keep their own sleeper count. For `Deadline.wait`.
    @inline(__always)
    static func sleep(on word: UnsafeMutablePointer<UInt32>, while seen: UInt32, for slice: UInt64) -> Bool {
        if luamp_atomic_load32(word) != seen { return true }
        if slice == 0 { return false }
        _ = luamp_futex_wait(word, seen, Int64(slice))
        return luamp_atomic_load32(word) != seen
    }

    /// Bumps the sequence and wakes up to `count` sleepers (`FUTEX_WAKE`), skipping the syscall
    /// when nobody waits. Waiters that had not yet slept see the new sequence and return.
    func notify(count: Int32 = .max) {
        _ = luamp_atomic_add32(sequence, 1)
        if luamp_atomic_load32(waiters) > 0 {
            _ = luamp_futex_wake(sequence, count)
        }
    }

    /// `notify` waking every sleeper.
    func notifyAll() { notify(count: .max) }

    /// The notifier's half of `notify`, for use with the state's mutex held: bumps the sequence
    /// and says whether a `wake` is needed (someone sleeps). The syscall then happens after unlock.
    func advance() -> Bool {
        _ = luamp_atomic_add32(sequence, 1)
        return luamp_atomic_load32(waiters) > 0
    }

    /// Wakes up to `n` sleepers (`FUTEX_WAKE`).
    func wake(_ n: Int32) { _ = luamp_futex_wake(sequence, n) }
}
