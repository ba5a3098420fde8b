// RuntimeState: what belongs to one Lua state running mp (its children, pools, waits, registry slots to free), kept in that state's registry.
internal import CLua
internal import LuaMPShims
import Synchronization

/// The `mp` state of one Lua state: a `LuaRuntime`, or a host interpreter that loaded mp.so.
///
/// Everything here holds registry references or Lua objects of that one state, so it must
/// never be shared with another runtime of the same process (an embedding app may run several,
/// on one thread or on several): one runtime's `finish()` joins only its own children and
/// terminates only its own pools, and a wait runs only its own pools' services. Reached from a
/// `LuaStack` with `RuntimeState.of(s)` (a lookup in the registry, made by the installers and
/// the operations that start, join or wait, never by a hot path); objects that free registry
/// slots later (in `deinit`, which never calls into Lua) keep the state's `garbage` instead.
///
/// A forked child inherits its parent's copy; `enterChild` forgets the parent's children (pools
/// and services check their owner's pid themselves).
final class RuntimeState {
    /// Processes started here and not yet forgotten (joined, reaped by `active_children`, or
    /// cleaned up at the end of the script): `ProcessTree`.
    var children: [ProcessRecord] = []
    /// Pools created here (`PoolRegistry`).
    let pools = PoolRegistry()
    /// Host waits: services, observers, futures with due callbacks (`HostWait`).
    let waits = HostWaitState()
    /// Registry slots to free at the next safe point.
    let garbage = RegistryGarbage()
    /// Progress bars of calls in progress here (`ProgressBoard`).
    var progressBars: [ProgressBar] = []
    /// Counts the processes started and pools created here: each takes the next number
    /// (`MPModule.nextStartSequence`), so a value read before some code runs tells what that
    /// code started (`LuaRuntime.workMark`).
    var startSequence: UInt64 = 0

    /// The registry key: the address of a byte allocated once (light userdata keys are
    /// compared by address; an `Int` so the constant is plainly `Sendable`).
    private static let key = Int(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))

    /// Creates `s`'s state unless it has one (installing `mp` twice keeps the first). The
    /// holder userdata releases it when the state is closed. Stack: [-0, +0].
    static func install(_ s: LuaStack) {
        let L = s.L
        let reg = s.registryIndex()
        let k = UnsafeRawPointer(bitPattern: key)
        guard lua_rawgetp(L, reg, k) != LUA_TUSERDATA else { s.pop(); return }
        s.pop()
        StateHolder.push(s, RuntimeState()) { RuntimeState.holderReleased() }
        lua_rawsetp(L, reg, k)
    }

    /// `s`'s state. A state without one (mp not installed, or closing: its holder was finalized
    /// already) gets an empty throwaway, so late clean-ups find nothing to do. Stack: [-0, +0].
    ///
    /// The thread's last answer is kept (`LookupCache`): waits and pool calls ask several times
    /// per call, and a registry lookup costs ~250 instructions.
    @inline(__always)
    static func of(_ s: LuaStack) -> RuntimeState {
        let c = threadObject(Int32(LUAMP_SLOT_RUNTIME_LOOKUP)) { LookupCache() }
        let registry = lua_topointer(s.L, s.registryIndex())
        if registry == c.registry, c.generation == closings.load(ordering: .relaxed), let rt = c.state { return rt }
        return lookUp(s, c, registry)
    }

    private static func lookUp(_ s: LuaStack, _ c: LookupCache, _ registry: UnsafeRawPointer?) -> RuntimeState {
        let L = s.L
        let generation = closings.load(ordering: .relaxed)
        defer { lua_settop(L, -2) }
        guard lua_rawgetp(L, s.registryIndex(), UnsafeRawPointer(bitPattern: key)) == LUA_TUSERDATA,
              let rt = StateHolder.object(L, at: -1, as: RuntimeState.self) else { return RuntimeState() }
        c.registry = registry
        c.state = rt
        c.generation = generation
        return rt
    }

    /// Counts released holders (states closed): a cached lookup made before is stale, since a
    /// new state may then sit at a closed one's addresses.
    private static let closings = Atomic<UInt64>(0)

    /// A thread's last lookup: the state's registry table (unique while the state lives), its
    /// `RuntimeState` (alive while the state is: the registry holds its holder) and `closings`
    /// when it was made.
    private final class LookupCache {
        var registry: UnsafeRawPointer?
        unowned(unsafe) var state: RuntimeState?
        var generation: UInt64 = 0
    }

    /// The holder of a closing state was finalized.
    fileprivate static func holderReleased() { closings.add(1, ordering: .relaxed) }

    /// In a freshly forked child: the parent's children are not this process's. The old array are overwritten, not released: releasing them would free the
    /// parent's buffers and objects here, writing to heap pages that each cost a copy-on-write
    /// fault (the child ends soon; nothing leaks into the parent).
    func enterChild() {
        withUnsafeMutablePointer(to: &children) { $0.initialize(to: []) }
    }
}

/// Registry slots of one Lua state to free at its next safe point: objects released in
/// `deinit` (which never calls into Lua) or errors raised with a slot's value leave them here.
final class RegistryGarbage {
    private(set) var slots: [Int32] = []

    func append(_ r: Int32) { slots.append(r) }
    func append(contentsOf refs: [Int32]) { slots.append(contentsOf: refs) }

    /// Frees the slots. Stack: [-0, +0].
    @inline(__always)
    func collect(_ s: LuaStack) {
        guard !slots.isEmpty else { return }
        let refs = slots
        slots.removeAll()
        for r in refs { luaL_unref(s.L, s.registryIndex(), r) }
    }
}

/// A Swift object owned by a Lua state: a full userdata that keeps it retained until the state
/// collects the userdata (its `__gc` releases it). The per-state objects kept in the registry
/// (`RuntimeState`, the codec's `ReferenceIndex`) live in one.
enum StateHolder {
    /// Pushes a holder of `object` with `userValues` user values; `released` runs when the
    /// holder's `__gc` has released it. Stack: [-0, +1].
    static func push(_ s: LuaStack, _ object: AnyObject, userValues: Int32 = 0, released: @escaping () -> Void = {}) {
        let L = s.L
        let p = lua_newuserdatauv(L, MemoryLayout<UnsafeMutableRawPointer>.size, userValues)!
        p.storeBytes(of: Unmanaged<AnyObject>.passRetained(object).toOpaque(), as: UnsafeMutableRawPointer.self)
        s.newTable(hashCount: 1)
        s.setFunction(-1, "__gc") { s in
            if let p = lua_touserdata(s.L, 1), let raw = p.load(as: UnsafeMutableRawPointer?.self) {
                p.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
                Unmanaged<AnyObject>.fromOpaque(raw).release()
                released()
            }
            return 0
        }
        lua_setmetatable(L, -2)
    }

    /// The object held by the holder at `i` (nil once released). `T` must be the type pushed.
    @inline(__always)
    static func object<T: AnyObject>(_ L: OpaquePointer, at i: Int32, as _: T.Type) -> T? {
        guard let raw = lua_touserdata(L, i)?.load(as: UnsafeMutableRawPointer?.self) else { return nil }
        return Unmanaged<T>.fromOpaque(raw).takeUnretainedValue()
    }
}
