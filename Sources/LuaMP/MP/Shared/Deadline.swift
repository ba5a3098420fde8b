// Deadline: a point on CLOCK_MONOTONIC (or "never") that every blocking wait is bounded by.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// When a blocking operation gives up, converted from Lua seconds at the API edge (as NIO's
/// `TimeAmount`/`NIODeadline`): `nil` seconds wait forever, negative or zero seconds mean "now"
/// (a non-blocking attempt). The one time type of every wait below the Lua edge; every wait
/// runs in short slices (`wait`, `Deadline.slice`) so it can notice Ctrl-C and dead peers.
struct Deadline: Equatable {
    /// Nanoseconds on CLOCK_MONOTONIC; `UInt64.max` = never.
    let nanoseconds: UInt64

    /// The longest single sleep of any wait loop (nanoseconds): 100 ms.
    static let slice: UInt64 = 100_000_000

    static let never = Deadline(nanoseconds: .max)
    /// Already expired: a non-blocking attempt.
    static var now: Deadline { Deadline(nanoseconds: Deadline.monotonicNow()) }

    init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// A deadline `seconds` from now; nil = never; NaN or negative = now; huge = never.
    init(seconds: Double?) {
        guard let s = seconds else { self = .never; return }
        if !(s > 0) { self = .now; return }
        if s >= 1e9 { self = .never; return }   // ~31 years: forever for our purposes
        self.nanoseconds = Deadline.monotonicNow() &+ UInt64(s * 1e9)
    }

    var isNever: Bool { nanoseconds == .max }

    /// True once the deadline has passed.
    var hasPassed: Bool { !isNever && Deadline.monotonicNow() >= nanoseconds }

    /// Nanoseconds left (0 when passed; `UInt64.max` for never).
    var remaining: UInt64 {
        if isNever { return .max }
        let now = Deadline.monotonicNow()
        return nanoseconds > now ? nanoseconds - now : 0
    }

    /// The longest sleep while the pool service is on (nanoseconds): its period, 5 ms.
    static let serviceSlice: UInt64 = 5_000_000

    /// How long the next sleep of a wait loop may last: the time left, at most `Deadline.slice`
    /// (`serviceSlice` while pools have work: each slice then ends with a service round).
    var nextSlice: UInt64 { min(remaining, luamp_service_is_on() != 0 ? Deadline.serviceSlice : Deadline.slice) }

    /// The one blocking-wait loop of the runtime: the deadline cut into slices of at most
    /// `Deadline.slice`, with Ctrl-C and dead peers noticed between them. Each round:
    /// 1. `attempt(slice)` checks the condition and, when it does not hold and `slice > 0`,
    ///    blocks for at most `slice` nanoseconds (a futex, `poll`, `nanosleep`, a timed lock) and
    ///    checks again; true ends the wait. With `slice == 0` (the deadline has passed, or
    ///    `.now`) it must not block: the wait then ends with false.
    /// 2. Ctrl-C: `interrupt` throws `interrupted!` (`Clock.checkInterrupt`, unless the caller
    ///    takes the interrupt itself inside `attempt`).
    /// 3. `stop` (if given) may end the wait early by returning true (e.g. "a peer died").
    /// 4. The deadline: false once it has passed.
    /// 5. Pools: while any has work, one non-blocking round of the pool service runs between
    ///    slices (`luamp_service_poll`: not inside a pool call), so tasks keep being sent and
    ///    results read while the host blocks on a queue, lock, event, join or pipe.
    /// - Returns: true when `attempt` (or `stop`) said so, false when the deadline passed first.
    @inline(__always)
    func wait(interrupt: () throws -> Void = Clock.checkInterrupt, stop: (() throws -> Bool)? = nil,
              _ attempt: (_ slice: UInt64) throws -> Bool) throws -> Bool {
        while true {
            let slice = nextSlice
            if try attempt(slice) { return true }
            if slice == 0 { return false }
            try interrupt()
            if let stop, try stop() { return true }
            if hasPassed { return false }
            luamp_service_poll()
        }
    }

    /// Milliseconds for `poll(2)` covering `slice` nanoseconds (rounded up, at most 100).
    static func pollMilliseconds(_ slice: UInt64) -> Int32 {
        Int32(min(UInt64(100), (slice + 999_999) / 1_000_000))
    }

    /// CLOCK_MONOTONIC now, in nanoseconds (`clock_gettime`).
    static func monotonicNow() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

extension LuaStack {
    /// A timeout argument: none/nil = never, else a number of seconds.
    /// - Throws: `LuaArgumentError` when it is neither nil nor a number.
    func deadlineArgument(_ i: Int32) throws -> Deadline {
        if isNoneOrNil(i) { return .never }
        return Deadline(seconds: try checkNumber(i))
    }

    /// Python's `(block, timeout)` pair: `block == false` means "now" whatever the timeout;
    /// otherwise the timeout (nil = never).
    func blockAndTimeout(_ blockIndex: Int32) throws -> Deadline {
        if !optBool(blockIndex, true) { return .now }
        return try deadlineArgument(blockIndex + 1)
    }
}
