// mp.Event: a flag word in the arena that waiters sleep on with FUTEX_WAIT.
internal import LuaMPShims

/// An event in the arena. Layout: `+0` UInt32 magic, `+4` UInt32 state (the futex word: bit 0
/// = flag, bits 1… = how many times `set` raised it), `+8` UInt32 sleepers.
///
/// `wait` returns true as soon as the flag was raised during the wait, even if someone cleared
/// it again before the waiter ran (Python's Event may miss such a pulse). No locks: a process
/// killed anywhere in `set`/`clear`/`wait` cannot leave anything held.
struct SharedEvent {
    static let magic = UInt32(LUAMP_MAGIC_EVENT)
    static let size = 12

    let base: UnsafeMutableRawPointer
    var state: UnsafeMutablePointer<UInt32> { (base + 4).assumingMemoryBound(to: UInt32.self) }
    var sleepers: UnsafeMutablePointer<UInt32> { (base + 8).assumingMemoryBound(to: UInt32.self) }

    init(_ arena: Arena, _ offset: UInt64) { base = arena.pointer(offset) }

    static func create() throws -> UInt64 {
        let a = try Arena.require()
        let off = try a.allocate(size, zeroed: true)
        luamp_atomic_store32(a.pointer(off).assumingMemoryBound(to: UInt32.self), magic)
        return off
    }

    var isSet: Bool { luamp_atomic_load32(state) & 1 != 0 }

    func set() {
        while true {
            let w = luamp_atomic_load32(state)
            if w & 1 != 0 { return }
            if luamp_atomic_cas32(state, w, (w &+ 2) | 1) != 0 { break }
        }
        if luamp_atomic_load32(sleepers) > 0 { _ = luamp_futex_wake(state, Int32.max) }
    }

    func clear() {
        while true {
            let w = luamp_atomic_load32(state)
            if w & 1 == 0 || luamp_atomic_cas32(state, w, w & ~1) != 0 { return }
        }
    }

    /// - Returns: true if the flag is or was raised before `deadline`.
    /// - Throws: `interrupted!`.
    func wait(until deadline: Deadline) throws -> Bool {
        let start = luamp_atomic_load32(state)
        if start & 1 != 0 { return true }
        // Any change of the word is a `set` (clear only changes a raised flag).
        return try deadline.wait { slice in
            if slice == 0 { return false }
            _ = luamp_atomic_add32(sleepers, 1)
            let changed = EventCount.sleep(on: state, while: start, for: slice)
            _ = luamp_atomic_sub32(sleepers, 1)
            return changed
        }
    }
}

enum EventKind {
    static let kind: SharedKind = {
        var k = SharedKind.Hooks()
        k.release = { a, off in a.free(off) }
        k.describe = { _, a, r in SharedEvent(a, r.offset).isSet ? "<Event set>" : "<Event unset>" }
        k.methods = [
            ("set", { s in try eventArg(s).set(); return 0 }),
            ("clear", { s in try eventArg(s).clear(); return 0 }),
            ("is_set", { s in s.push(try eventArg(s).isSet); return 1 }),
            ("wait", { s in
                let e = try eventArg(s)
                s.push(try e.wait(until: s.deadlineArgument(2)))
                return 1
            }),
        ]
        return SharedKind(name: "Event", magic: SharedEvent.magic, bytes: SharedEvent.size, k)
    }()

    static func eventArg(_ s: LuaStack) throws -> SharedEvent {
        SharedEvent(try Arena.require(), try SharedKinds.check(s, 1, kind).offset)
    }

    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "Event") { s in
            SharedKinds.push(s, kind, offset: try SharedEvent.create(), owned: true)
            return 1
        }
    }
}
