// LuaReference: a Lua value kept alive in the registry on behalf of Swift.
internal import CLua
internal import LuaMPShims

/// A Lua function, userdata or thread held from Swift. It keeps its state alive; when the
/// reference goes away its registry slot is freed at the state's next operation (a `deinit`
/// never calls into Lua).
public final class LuaReference: Hashable {
    let state: LuaState
    let ref: Int32
    /// Lua's type name of the referenced value.
    public let typeName: String
    /// The address Lua prints for it (`function: 0x…`).
    public let id: String

    init(state: LuaState, ref: Int32, typeName: String, id: String) {
        self.state = state
        self.ref = ref
        self.typeName = typeName
        self.id = id
    }

    deinit { state.pendingUnrefs.append(ref) }

    /// Pushes the referenced value. Stack: [-0, +1].
    func push(onto stack: LuaStack) {
        _ = lua_rawgeti(stack.L, stack.registryIndex(), lua_Integer(ref))
    }

    public static func == (a: LuaReference, b: LuaReference) -> Bool { a === b || (a.state === b.state && a.id == b.id) }
    public func hash(into h: inout Hasher) { h.combine(id) }
}
