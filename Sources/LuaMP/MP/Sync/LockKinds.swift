// mp.Lock and mp.RLock: constructors, methods and the shared `with` helper.
#if canImport(Glibc)
import Glibc
#endif

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
        let k = SharedKind(name: name, magic: recursive ? SharedLock.rlockMagic : SharedLock.lockMagic,
                           bytes: SharedLock.size)
        k.release = { a, off in a.free(off) }
        k.luaMethods = [("with", withMethodSource)]
        k.methods = [
            ("acquire", { s in
                let l = try lockArg(s, recursive)
                return try l.acquire(until: s.blockAndTimeout(2)).push(s)
            }),
            ("release", { s in
                try lockArg(s, recursive).release()
                return 0
            }),
            ("locked", { s in
                s.push(try lockArg(s, recursive).isLocked)
                return 1
            }),
        ]
        return k
    }

    nonisolated(unsafe) static let lock = kind(recursive: false)
    nonisolated(unsafe) static let rlock = kind(recursive: true)

    /// Argument 1 as a lock view. - Throws: `LuaArgumentError` for other values.
    static func lockArg(_ s: LuaStack, _ recursive: Bool) throws -> SharedLock {
        let r = try SharedKinds.check(s, 1, recursive ? rlock : lock)
        return SharedLock(try Arena.require(), r.offset)
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
        SharedKinds.register(lock)
        SharedKinds.register(rlock)
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
