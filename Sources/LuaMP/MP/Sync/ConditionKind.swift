// mp.Condition: a Lock/RLock plus waiter slots and an event count (never pthread_cond_t).
internal import LuaMPShims

/// A condition variable in the arena. Layout: `+0` UInt32 magic, `+4` UInt32 ticket counter,
/// `+8` UInt64 offset of its Lock/RLock, `+16` EventCount (8 bytes), `+24` `slots` waiter slots
/// of 12 bytes: UInt32 pid, UInt32 state (0 free, 1 waiting, 2 notified), UInt32 ticket.
///
/// Every slot change happens while holding the condition's lock (wait and notify require it),
/// so the slots need no lock of their own. `notify(n)` marks the n oldest live waiters
/// notified and wakes the sleepers; a waiter returns true only when its own slot was notified,
/// so `notify(1)` wakes exactly one. A waiter killed while waiting left a slot with a dead pid:
/// `notify` frees such slots (pidfd liveness) instead of wasting a wake-up on them.
struct SharedCondition {
    static let magic = UInt32(LUAMP_MAGIC_CONDITION)
    static let slots = 64
    static let slotBytes = 12
    static let size = 24 + slots * slotBytes

    let base: UnsafeMutableRawPointer
    let arena: Arena

    init(_ arena: Arena, _ offset: UInt64) { self.arena = arena; base = arena.pointer(offset) }

    var lockOffset: UInt64 { base.load(fromByteOffset: 8, as: UInt64.self) }
    var lock: SharedLock { SharedLock(arena, lockOffset) }
    var events: EventCount { EventCount(at: base + 16) }
    private func slot(_ i: Int) -> UnsafeMutablePointer<UInt32> {
        (base + 24 + i * SharedCondition.slotBytes).assumingMemoryBound(to: UInt32.self)
    }

    /// Creates a condition using the lock at `lockOffset` (a fresh RLock when nil).
    static func create(lockOffset: UInt64?) throws -> UInt64 {
        let a = try Arena.require()
        let lk = try lockOffset ?? SharedLock.create(recursive: true)
        let off: UInt64
        do { off = try a.allocate(size, zeroed: true) } catch {
            if lockOffset == nil { a.free(lk) }
            throw error
        }
        let p = a.pointer(off)
        p.storeBytes(of: lk, toByteOffset: 8, as: UInt64.self)
        _ = EventCount.initialize(at: p + 16)
        luamp_atomic_store32(p.assumingMemoryBound(to: UInt32.self), magic)
        return off
    }

    /// Python's `Condition.wait(timeout)`: releases the lock (all levels), sleeps until
    /// notified or `deadline`, re-takes the lock. - Returns: true if notified.
    /// - Throws: when the caller does not hold the lock, too many waiters, `interrupted!`.
    func wait(until deadline: Deadline) throws -> Bool {
        let l = lock
        guard l.heldByMe else { throw LuaArgumentError(1, "cannot wait on un-acquired lock") }
        let me = CurrentProcess.pid
        var mine = -1
        for i in 0..<SharedCondition.slots where slot(i)[1] == 0 || (slot(i)[0] != me && luamp_pid_alive(Int32(bitPattern: slot(i)[0])) == 0) {
            mine = i
            break
        }
        guard mine >= 0 else { throw LuaRaise("too many processes waiting on one mp.Condition (\(SharedCondition.slots))") }
        let ticket = luamp_atomic_add32((base + 4).assumingMemoryBound(to: UInt32.self), 1)
        let s = slot(mine)
        s[0] = me; s[2] = ticket; s[1] = 1
        defer { if s[0] == me { s[1] = 0 } }     // runs with the lock held again
        while true {
            let seen = events.prepare()
            let depth = try l.releaseAll()
            var interrupted = false
            do { _ = try events.wait(seen: seen, until: deadline) } catch { interrupted = true }
            try l.reacquire(depth: depth)          // Ctrl-C: re-take the lock first, then raise
            if interrupted { throw LuaRaise("interrupted!") }
            if s[0] == me && s[1] == 2 { return true }
            if s[0] != me { return false }       // our slot was recycled (should not happen)
            if deadline.hasPassed { return false }
        }
    }

    /// Slots in state "waiting" (relaxed reads without the lock: approximate; a waiter killed
    /// while waiting counts until the next `notify` frees its slot).
    var approximateWaiters: Int {
        (0..<SharedCondition.slots).reduce(0) { n, i in n + (luamp_relaxed_load32(slot(i) + 1) == 1 ? 1 : 0) }
    }

    /// Wakes up to `n` waiters (oldest first). - Throws: when the caller does not hold the lock.
    func notify(_ n: Int) throws {
        guard lock.heldByMe else { throw LuaArgumentError(1, "cannot notify on un-acquired lock") }
        var left = n
        var woke = false
        while left > 0 {
            var best = -1
            var bestTicket: UInt32 = 0
            for i in 0..<SharedCondition.slots where slot(i)[1] == 1 {
                let t = slot(i)[2]
                if best < 0 || Int32(bitPattern: t &- bestTicket) < 0 { best = i; bestTicket = t }
            }
            if best < 0 { break }
            let s = slot(best)
            if luamp_pid_alive(Int32(bitPattern: s[0])) == 0 { s[1] = 0; continue }   // died waiting
            s[1] = 2
            left -= 1
            woke = true
        }
        if woke { events.notifyAll() }
    }
}

enum ConditionKind {
    static let waitForSource = """
    local helpers = ...
    local monotonic = helpers.monotonic
    return function(self, predicate, timeout)
      local result = predicate()
      if result then return result end
      local endtime = timeout and monotonic() + timeout
      while not result do
        local waittime
        if endtime then
          waittime = endtime - monotonic()
          if waittime <= 0 then break end
        end
        self:wait(waittime)
        result = predicate()
      end
      return result
    end
    """

    static let kind: SharedKind = {
        var k = SharedKind.Hooks()
        k.release = { a, off in
            let c = SharedCondition(a, off)
            a.free(c.lockOffset)
            a.free(off)
        }
        k.luaMethods = [("with", withMethodSource), ("wait_for", waitForSource)]
        // `<Condition waiters=1 <RLock unlocked>>`: waiters and the lock's own description.
        k.describe = { _, a, r in
            let c = SharedCondition(a, r.offset)
            let l = c.lock
            return "<Condition waiters=\(c.approximateWaiters) \(LockKinds.describe(l, l.isRecursive ? "RLock" : "Lock"))>"
        }
        k.methods = [
            ("acquire", { s in try condArg(s).lock.acquire(until: s.blockAndTimeout(2)).push(s) }),
            ("release", { s in try condArg(s).lock.release(); return 0 }),
            ("wait", { s in
                let c = try condArg(s)
                s.push(try c.wait(until: s.deadlineArgument(2)))
                return 1
            }),
            ("notify", { s in
                let n = try s.optInteger(2, 1)
                guard n >= 0 else { throw LuaArgumentError(2, "n must be >= 0") }
                try condArg(s).notify(Int(min(n, Int64(Int32.max))))
                return 0
            }),
            ("notify_all", { s in try condArg(s).notify(Int(Int32.max)); return 0 }),
        ]
        return SharedKind(name: "Condition", magic: SharedCondition.magic, bytes: SharedCondition.size, k)
    }()

    static func condArg(_ s: LuaStack) throws -> SharedCondition {
        SharedCondition(try Arena.require(), try SharedKinds.check(s, 1, kind).offset)
    }

    /// Installs `mp.Condition([lock])`: `lock` is an mp.Lock or mp.RLock (default: a new RLock).
    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "Condition") { s in
            var lockOffset: UInt64? = nil
            if !s.isNoneOrNil(1) {
                guard let l = LockKinds.anyLock(s, 1) else {
                    throw LuaArgumentError(1, "mp.Lock or mp.RLock expected, got \(s.typeName(at: 1))")
                }
                lockOffset = l.offset
                SharedKinds.markShared(s, 1)      // the condition now uses it: never free it
            }
            let off = try SharedCondition.create(lockOffset: lockOffset)
            // A condition with the caller's lock must not free that lock when collected.
            SharedKinds.push(s, kind, offset: off, owned: lockOffset == nil)
            return 1
        }
    }
}
