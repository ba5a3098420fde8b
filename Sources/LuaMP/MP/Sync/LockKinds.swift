// mp.Lock and mp.RLock: constructors, methods and the shared `with` helper.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Lua source of `obj:with(fn, ...)`: acquire, run `fn(...)` under `pcall`, release, then
/// return `fn`'s results or re-raise its error value unchanged (tables included).
let withMethodSource = """
local pcall, error = pcall, error
local function finish(self, ok, ...)
  self:release()
  if not ok then error((...), 0) end
  return ...
end
return function(self, fn, ...)
  self:acquire()
  return finish(self, pcall(fn, ...))
end
"""

extension LockOutcome {
    /// Pushes what `acquire` returns in Lua: `true`, `true, "owner-died"` or `false`.
    /// Stack: [-0, +1 or +2]. Returns the number of values pushed.
    func push(_ s: LuaStack) -> Int32 {
        switch self {
        case .acquired: s.push(true); return 1
        case .ownerDied: s.push(true); s.push("owner-died"); return 2
        case .timedOut: s.push(false); return 1
        }
    }
}

enum LockKinds {
    /// The kinds share their methods; `recursive` only changes the magic and error texts.
    static func kind(recursive: Bool) -> SharedKind {
        let name = recursive ? "RLock" : "Lock"
        return SharedKind(name: name, magic: recursive ? SharedLock.rlockMagic : SharedLock.lockMagic,
                          bytes: SharedLock.size, .init(
            luaMethods: [("with", withMethodSource)],
            fastMethods: recursive
                ? [("acquire", { L, a in runFast(L, a) { s in try LockKinds.acquire(s, LockKinds.rlockTag) } }),
                   ("release", { L, a in runFast(L, a) { s in try LockKinds.release(s, LockKinds.rlockTag) } }),
                   ("locked", { L, a in runFast(L, a) { s in try LockKinds.locked(s, LockKinds.rlockTag) } })]
                : [("acquire", { L, a in runFast(L, a) { s in try LockKinds.acquire(s, LockKinds.lockTag) } }),
                   ("release", { L, a in runFast(L, a) { s in try LockKinds.release(s, LockKinds.lockTag) } }),
                   ("locked", { L, a in runFast(L, a) { s in try LockKinds.locked(s, LockKinds.lockTag) } })],
            cFast: recursive
                ? ["acquire": Int32(LUAMP_FAST_RLOCK_ACQUIRE), "release": Int32(LUAMP_FAST_RLOCK_RELEASE)]
                : ["acquire": Int32(LUAMP_FAST_LOCK_ACQUIRE), "release": Int32(LUAMP_FAST_LOCK_RELEASE)],
            release: { a, off in a.free(off) },
            describe: { _, a, r in describe(SharedLock(a, r.offset), name) }))
    }

    /// `<Lock unlocked>`, `<Lock locked by pid 123>`, `<RLock locked by pid 123 depth=2>`
    /// (relaxed reads: the holder may change while we look; "locked" without a pid in the
    /// instant between taking the mutex and storing the owner).
    static func describe(_ l: SharedLock, _ name: String) -> String {
        guard l.isLocked else { return "<\(name) unlocked>" }
        let owner = luamp_relaxed_load32(l.ownerPid)
        let who = owner != 0 ? " by pid \(owner)" : ""
        return l.isRecursive ? "<\(name) locked\(who) depth=\(luamp_relaxed_load32(l.depth))>" : "<\(name) locked\(who)>"
    }

    static let lock = kind(recursive: false)
    static let rlock = kind(recursive: true)

    static let lockTag = KindTag("mp.Lock", magic: SharedLock.lockMagic)
    static let rlockTag = KindTag("mp.RLock", magic: SharedLock.rlockMagic)

    /// Argument 1 as a lock view. - Throws: `LuaArgumentError` for other values.
    @inline(__always)
    static func lockArg(_ s: LuaStack, _ tag: KindTag) throws -> SharedLock {
        SharedLock(try Arena.require(), try tag.ref(s, 1).pointee.offset)
    }

    /// `acquire([block [, timeout]])` → `true` | `true, "owner-died"` | `false`.
    static func acquire(_ s: LuaStack, _ tag: KindTag) throws -> Int32 {
        let l = try lockArg(s, tag)
        let t0 = Trace.on ? Trace.now() : 0
        let r = try l.acquire(until: s.blockAndTimeout(2))
        if t0 > 0 { Trace.wait("\(tag.name)", since: t0) }
        return r.push(s)
    }

    static func release(_ s: LuaStack, _ tag: KindTag) throws -> Int32 {
        try lockArg(s, tag).release()
        return 0
    }

    static func locked(_ s: LuaStack, _ tag: KindTag) throws -> Int32 {
        s.push(try lockArg(s, tag).isLocked)
        return 1
    }

    /// The Lock or RLock at `i` (for Condition and Value/Array's `lock` option), or nil.
    /// Stack: [-0, +0].
    static func anyLock(_ s: LuaStack, _ i: Int32) -> (offset: UInt64, kind: SharedKind)? {
        if let r = SharedKinds.toRef(s, i, lock) { return (r.pointee.offset, lock) }
        if let r = SharedKinds.toRef(s, i, rlock) { return (r.pointee.offset, rlock) }
        return nil
    }

    /// Pushes a userdata for the existing lock at `offset` (kind read from its magic).
    /// Stack: [-0, +1].
    static func pushExisting(_ s: LuaStack, offset: UInt64) throws {
        let a = try Arena.require()
        let isR = SharedLock(a, offset).isRecursive
        SharedKinds.push(s, isR ? rlock : lock, offset: offset, owned: false)
    }

    /// Registers both kinds and installs `mp.Lock()` and `mp.RLock()`.
    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "Lock") { s in
            SharedKinds.push(s, lock, offset: try SharedLock.create(recursive: false), owned: true)
            return 1
        }
        s.setFunction(t, "RLock") { s in
            SharedKinds.push(s, rlock, offset: try SharedLock.create(recursive: true), owned: true)
            return 1
        }
    }
}
