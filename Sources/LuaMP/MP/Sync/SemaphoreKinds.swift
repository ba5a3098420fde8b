// mp.Semaphore and mp.BoundedSemaphore: a futex counter in the arena.
internal import LuaMPShims

/// A semaphore in the arena. Layout: `+0` UInt32 magic, `+4` UInt32 value (the futex word),
/// `+8` UInt32 sleepers, `+12` UInt32 bound (BoundedSemaphore: the start value; else 0).
///
/// acquire = CAS the value down when positive, else sleep on the value word (`FUTEX_WAIT`
/// while it is 0) in `Deadline.wait`'s slices; release = add and `FUTEX_WAKE` if anyone sleeps. No owner:
/// as in Python, a process that dies between acquire and release takes its unit with it; a
/// process killed while sleeping costs nothing (its sleeper count only causes a spare wake).
struct SharedSemaphore {
    static let magic = UInt32(LUAMP_MAGIC_SEMAPHORE)
    static let boundedMagic = UInt32(LUAMP_MAGIC_BOUNDED_SEM)
    static let size = 16
    /// The most a semaphore holds: Linux's `SEM_VALUE_MAX` (`INT_MAX`), as in Python. A start
    /// value or a `release` past it is an error, never a silent wrap of the 32-bit counter.
    static let maxValue: Int64 = Int64(Int32.max)

    let base: UnsafeMutableRawPointer
    var value: UnsafeMutablePointer<UInt32> { (base + 4).assumingMemoryBound(to: UInt32.self) }
    var sleepers: UnsafeMutablePointer<UInt32> { (base + 8).assumingMemoryBound(to: UInt32.self) }
    var bound: UInt32 { luamp_atomic_load32((base + 12).assumingMemoryBound(to: UInt32.self)) }

    init(_ arena: Arena, _ offset: UInt64) { base = arena.pointer(offset) }

    static func create(value: UInt32, bounded: Bool) throws -> UInt64 {
        let a = try Arena.require()
        let off = try a.allocate(size, zeroed: true)
        let sem = SharedSemaphore(a, off)
        luamp_atomic_store32(sem.value, value)
        luamp_atomic_store32((sem.base + 12).assumingMemoryBound(to: UInt32.self), bounded ? value : 0)
        luamp_atomic_store32(sem.base.assumingMemoryBound(to: UInt32.self), bounded ? boundedMagic : magic)
        return off
    }

    /// Takes one unit, waiting until `deadline`. - Returns: false on timeout.
    /// - Throws: `interrupted!`.
    func acquire(until deadline: Deadline) throws -> Bool {
        if take() { return true }          // no clock read when a unit is there
        return try deadline.wait { slice in
            if take() { return true }
            if slice == 0 { return false }
            _ = luamp_atomic_add32(sleepers, 1)
            _ = EventCount.sleep(on: value, while: 0, for: slice)
            _ = luamp_atomic_sub32(sleepers, 1)
            return take()
        }
    }

    /// One unit taken without waiting (CAS the value down while positive). - Returns: false at 0.
    private func take() -> Bool {
        while true {
            let v = luamp_atomic_load32(value)
            if v == 0 { return false }
            if luamp_atomic_cas32(value, v, v - 1) != 0 { return true }
        }
    }

    /// Adds `n` units and wakes up to `n` sleepers.
    /// - Throws: `LuaArgumentError` when a bounded semaphore would go above its start value, or
    ///   any semaphore above `maxValue` (the value is then unchanged).
    func release(_ n: UInt32) throws {
        let bounded = base.load(as: UInt32.self) == SharedSemaphore.boundedMagic
        let limit = bounded ? UInt64(bound) : UInt64(SharedSemaphore.maxValue)
        while true {
            let v = luamp_atomic_load32(value)
            guard UInt64(v) + UInt64(n) <= limit else {
                throw LuaArgumentError(1, bounded ? "semaphore or lock released too many times"
                    : "semaphore value would exceed \(SharedSemaphore.maxValue) (the most a semaphore holds)")
            }
            if luamp_atomic_cas32(value, v, v + n) != 0 { break }
        }
        if luamp_atomic_load32(sleepers) > 0 { _ = luamp_futex_wake(value, Int32(min(n, UInt32(Int32.max)))) }
    }
}

enum SemaphoreKinds {
    static func kind(bounded: Bool) -> SharedKind {
        var k = SharedKind.Hooks()
        k.release = { a, off in a.free(off) }
        k.luaMethods = [("with", withMethodSource)]
        // `<Semaphore value=2>`, `<BoundedSemaphore value=1 max=2>`.
        k.describe = { _, a, r in
            let sem = SharedSemaphore(a, r.offset)
            let v = luamp_atomic_load32(sem.value)
            return bounded ? "<BoundedSemaphore value=\(v) max=\(sem.bound)>" : "<Semaphore value=\(v)>"
        }
        k.methods = [
            ("acquire", { s in
                let sem = try semArg(s, bounded)
                s.push(try sem.acquire(until: s.blockAndTimeout(2)))
                return 1
            }),
            ("release", { s in
                let sem = try semArg(s, bounded)
                let n = try s.optInteger(2, 1)
                guard n >= 1, n <= SharedSemaphore.maxValue else { throw LuaArgumentError(2, "n must be between 1 and \(SharedSemaphore.maxValue)") }
                try sem.release(UInt32(n))
                return 0
            }),
            ("get_value", { s in
                s.push(Int64(luamp_atomic_load32(try semArg(s, bounded).value)))
                return 1
            }),
        ]
        return SharedKind(name: bounded ? "BoundedSemaphore" : "Semaphore",
                          magic: bounded ? SharedSemaphore.boundedMagic : SharedSemaphore.magic,
                          bytes: SharedSemaphore.size, k)
    }

    static let semaphore = kind(bounded: false)
    static let bounded = kind(bounded: true)

    static func semArg(_ s: LuaStack, _ isBounded: Bool) throws -> SharedSemaphore {
        let r = try SharedKinds.check(s, 1, isBounded ? bounded : semaphore)
        return SharedSemaphore(try Arena.require(), r.offset)
    }

    /// Registers both kinds and installs `mp.Semaphore([value])`, `mp.BoundedSemaphore([value])`
    /// (value may also come as `{value = n}`).
    static func install(_ s: LuaStack, _ t: Int32) {
        for (name, kind, isBounded) in [("Semaphore", semaphore, false), ("BoundedSemaphore", bounded, true)] {
            s.setFunction(t, name) { s in
                var v: Int64 = 1
                if s.type(at: 1) == .table {
                    if s.rawGet(1, field: "value") != .nil {
                        guard let n = s.toInteger(-1) else { throw LuaArgumentError(1, "value must be an integer") }
                        v = n
                    }
                    s.pop()
                } else {
                    v = try s.optInteger(1, 1)
                }
                guard v >= 0 else { throw LuaArgumentError(1, "semaphore initial value must be >= 0") }
                guard v <= SharedSemaphore.maxValue else { throw LuaArgumentError(1, "semaphore initial value too large (at most \(SharedSemaphore.maxValue))") }
                SharedKinds.push(s, kind, offset: try SharedSemaphore.create(value: UInt32(v), bounded: isBounded), owned: true)
                return 1
            }
        }
    }
}
