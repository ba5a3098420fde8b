// LuaReference: a Lua value kept alive in the registry on behalf of Swift.
internal import CLua
internal import LuaMPShims

/// A Lua function, userdata or thread held from Swift. It keeps its state alive; when the
/// reference goes away its registry slot is freed at the state's next operation (a `deinit`
/// never calls into Lua).
public final class LuaReference: Hashable {
    let state: LuaState
    let slot: RegistrySlot
    var ref: Int32 { slot.ref }
    /// Lua's type name of the referenced value.
    public let typeName: String
    /// The address Lua prints for it (`function: 0x…`).
    public let id: String

    init(state: LuaState, ref: Int32, typeName: String, id: String) {
        self.state = state
        slot = RegistrySlot(ref) { [state] in state.pendingUnrefs.append($0) }
        self.typeName = typeName
        self.id = id
    }

    /// Pushes the referenced value. Stack: [-0, +1].
    func push(onto stack: LuaStack) {
        _ = lua_rawgeti(stack.L, stack.registryIndex(), lua_Integer(ref))
    }

    public static func == (a: LuaReference, b: LuaReference) -> Bool { a === b || (a.state === b.state && a.id == b.id) }
    public func hash(into h: inout Hasher) { h.combine(id) }
}

/// A registry slot owned by a Swift object. When the owner goes away, `release` gets the slot
/// to free at the state's next operation (a `deinit` never calls into Lua): `LuaReference`
/// queues it on its `LuaState`, a pool's input source on the pool registry's garbage.
final class RegistrySlot {
    let ref: Int32
    private let release: (Int32) -> Void

    init(_ ref: Int32, release: @escaping (Int32) -> Void) {
        self.ref = ref
        self.release = release
    }

    deinit { release(ref) }
}
