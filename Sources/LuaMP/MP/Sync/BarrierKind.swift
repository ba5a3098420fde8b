// mp.Barrier: a cyclic barrier in the arena that breaks, instead of hanging, when a waiter dies.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// A barrier in the arena. Layout: `+0` magic, `+4` parties, `+8` count (arrived this cycle;
/// equals parties while the action runs), `+12` generation, `+16` broken, `+20` 1 + the
/// generation that `reset` cancelled (0: none), `+24` Double default timeout (NaN = none), `+32` robust mutex,
/// `+72` EventCount, `+80` UInt32 pid of each arrived waiter.
///
/// State changes happen under the internal robust mutex, held only for a few stores (never
/// while sleeping or running the action). Waiters sleep on the event count and, every slice,
/// check that every arrived waiter is still alive (pidfd): a dead one breaks the barrier so
/// the others get `BrokenBarrierError` instead of hanging.
struct SharedBarrier {
    static let magic = UInt32(LUAMP_MAGIC_BARRIER)
    static let maxParties = 4096
    static func size(parties: Int) -> Int { 80 + 4 * parties }

    let base: UnsafeMutableRawPointer

    init(_ arena: Arena, _ offset: UInt64) { base = arena.pointer(offset) }

    private func u32(_ off: Int) -> UnsafeMutablePointer<UInt32> { (base + off).assumingMemoryBound(to: UInt32.self) }
    var parties: UInt32 { u32(4).pointee }
    var count: UnsafeMutablePointer<UInt32> { u32(8) }
    var generation: UnsafeMutablePointer<UInt32> { u32(12) }
    var broken: UnsafeMutablePointer<UInt32> { u32(16) }
    var resetGeneration: UnsafeMutablePointer<UInt32> { u32(20) }
    var defaultTimeout: Double? {
        let t = base.load(fromByteOffset: 24, as: Double.self)
        return t.isNaN ? nil : t
    }
    var mutex: RobustMutex { RobustMutex(at: base + 32) }
    var events: EventCount { EventCount(at: base + 72) }
    func pid(_ i: Int) -> UnsafeMutablePointer<UInt32> { u32(80 + 4 * i) }

    static func create(parties: Int, timeout: Double?) throws -> UInt64 {
        let a = try Arena.require()
        let off = try a.allocate(size(parties: parties), zeroed: true)
        let b = SharedBarrier(a, off)
        b.u32(4).pointee = UInt32(parties)
        b.base.storeBytes(of: timeout ?? .nan, toByteOffset: 24, as: Double.self)
        do { _ = try RobustMutex.initialize(at: b.base + 32, kind: .normal) } catch { a.free(off); throw error }
        _ = EventCount.initialize(at: b.base + 72)
        luamp_atomic_store32(b.u32(0), magic)
        return off
    }

    static func brokenError() -> MPError { MPError("BrokenBarrierError", "the barrier is broken") }

    /// Runs `body` holding the internal mutex (a dead holder's half-done update is accepted:
    /// every field is written with single stores).
    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        _ = mutex.lockShort()
        defer { mutex.unlock() }
        return try body()
    }

    /// Breaks the barrier and wakes everyone. Call with the mutex held.
    private func breakLocked() {
        broken.pointee = 1
        events.notifyAll()
    }

    /// Arrives. The last party returns `(index, true)` at once and must run the action and
    /// then call `complete()` (or `abort()` if the action failed); the others wait for that.
    /// - Throws: `BrokenBarrierError` if the barrier is or becomes broken, times out (which
    ///   breaks it, as in Python), or a waiter died; `interrupted!`.
    func arrive(until deadline: Deadline) throws -> (index: Int, last: Bool) {
        let me = CurrentProcess.pid
        var gen: UInt32 = 0
        var index = 0
        // Register, waiting first while a previous cycle is still draining.
        while true {
            let seen = events.prepare()
            let registered: Bool = try locked {
                if broken.pointee != 0 { throw SharedBarrier.brokenError() }
                if count.pointee >= parties { return false }
                index = Int(count.pointee)
                pid(index).pointee = me
                count.pointee += 1
                gen = generation.pointee
                return true
            }
            if registered { break }
            // Draining: the last party of the previous cycle runs the action; if it dies there
            // the barrier breaks (deadWaiter), so this wait cannot hang either.
            if try !events.wait(seen: seen, until: deadline, poll: { deadWaiter(except: me) }) {
                locked { breakLocked() }
                throw SharedBarrier.brokenError()
            }
        }
        if index + 1 == Int(parties) {
            // The last arrival releases the others: a waiter that died while waiting must not
            // count as arrived (it would pass the barrier for a dead party).
            if deadWaiter(except: me) { throw SharedBarrier.brokenError() }
            return (index, true)
        }
        while true {
            let seen = events.prepare()
            let outcome: Bool? = try locked {
                if generation.pointee != gen {
                    if resetGeneration.pointee == gen &+ 1 { throw SharedBarrier.brokenError() }
                    return true
                }
                if broken.pointee != 0 { throw SharedBarrier.brokenError() }
                if deadline.hasPassed { breakLocked(); throw SharedBarrier.brokenError() }
                return nil
            }
            if outcome != nil { return (index, false) }
            _ = try events.wait(seen: seen, until: deadline, poll: { deadWaiter(except: me) })
        }
    }

    /// True (after breaking the barrier) when an arrived waiter of this cycle has died.
    private func deadWaiter(except me: UInt32) -> Bool {
        locked {
            let n = min(Int(count.pointee), Int(parties))
            for i in 0..<n where pid(i).pointee != me && luamp_pid_alive(Int32(bitPattern: pid(i).pointee)) == 0 {
                breakLocked()
                return true
            }
            return false
        }
    }

    /// The last party, after the action: starts the next cycle and releases the waiters.
    func complete() {
        locked {
            count.pointee = 0
            generation.pointee &+= 1
            events.notifyAll()
        }
    }

    /// `abort()`: breaks the barrier; current and future waiters get `BrokenBarrierError`.
    func abort() { locked { breakLocked() } }

    /// `reset()`: back to the empty state; current waiters get `BrokenBarrierError`.
    func reset() {
        locked {
            resetGeneration.pointee = generation.pointee &+ 1
            generation.pointee &+= 1
            count.pointee = 0
            broken.pointee = 0
            events.notifyAll()
        }
    }

    /// `n_waiting`: parties waiting in the current cycle.
    var waiting: Int {
        let c = luamp_atomic_load32(count)
        return c < parties ? Int(c) : 0
    }
}

enum BarrierKind {
    /// `wait` in Lua: the last party runs the action (so its error passes through unchanged).
    static let waitSource = """
    local pcall, error = pcall, error
    return function(self, timeout)
      local index, last = self:_arrive(timeout)
      if last then
        local action = self:_action()
        if action then
          local ok, err = pcall(action)
          if not ok then self:abort(); error(err, 0) end
        end
        self:_complete()
      end
      return index
    end
    """

    static let kind: SharedKind = {
        var k = SharedKind.Hooks()
        k.release = { a, off in a.free(off) }
        k.luaMethods = [("wait", waitSource)]
        // `<Barrier parties=3 waiting=1>`, `… broken>` (relaxed reads, no internal mutex).
        k.describe = { _, a, r in
            let b = SharedBarrier(a, r.offset)
            return "<Barrier parties=\(b.parties) waiting=\(b.waiting)\(luamp_atomic_load32(b.broken) != 0 ? " broken" : "")>"
        }
        k.methods = [
            ("_arrive", { s in
                let b = try barrierArg(s)
                let deadline = s.isNoneOrNil(2) ? Deadline(seconds: b.defaultTimeout) : try s.deadlineArgument(2)
                let (index, last) = try b.arrive(until: deadline)
                s.push(Int64(index)); s.push(last)
                return 2
            }),
            ("_action", { s in
                _ = try barrierArg(s)
                _ = lua_getiuservalue(s.L, 1, 1)
                return 1
            }),
            ("_complete", { s in try barrierArg(s).complete(); return 0 }),
            ("abort", { s in try barrierArg(s).abort(); return 0 }),
            ("reset", { s in try barrierArg(s).reset(); return 0 }),
        ]
        k.getField = { s, r, key in
            let b = SharedBarrier(try Arena.require(), r.offset)
            switch key {
            case "parties": s.push(Int64(b.parties))
            case "n_waiting": s.push(Int64(b.waiting))
            case "broken": s.push(luamp_atomic_load32(b.broken) != 0)
            default: return false
            }
            return true
        }
        return SharedKind(name: "Barrier", magic: SharedBarrier.magic, bytes: SharedBarrier.size(parties: 1), k)
    }()

    static func barrierArg(_ s: LuaStack) throws -> SharedBarrier {
        SharedBarrier(try Arena.require(), try SharedKinds.check(s, 1, kind).offset)
    }

    /// Installs `mp.Barrier(parties [, action [, timeout]])` (or `{parties =, action =, timeout =}`).
    /// The action is kept with the Lua object (inherited by forked children), not in the arena.
    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "Barrier") { s in
            if s.type(at: 1) == .table {
                s.rawGet(1, field: "parties"); s.rawGet(1, field: "action"); s.rawGet(1, field: "timeout")
                s.remove(1)
            }
            s.top = 3                            // fixed argument slots; the result goes above
            let parties = try s.checkInteger(1)
            guard parties >= 1, parties <= SharedBarrier.maxParties else {
                throw LuaArgumentError(1, "parties must be between 1 and \(SharedBarrier.maxParties)")
            }
            if !s.isNoneOrNil(2) && s.type(at: 2) != .function { try s.checkType(2, .function) }
            let timeout = try s.optNumber(3)
            let off = try SharedBarrier.create(parties: Int(parties), timeout: timeout)
            SharedKinds.push(s, kind, offset: off, owned: true)
            s.pushValue(2)
            _ = lua_setiuservalue(s.L, -2, 1)
            return 1
        }
    }
}
