// LuaState: owns one lua_State (created, closed, and the housekeeping of Swift-held references).
internal import CLua
internal import LuaMPShims

/// The owner of a `lua_State`. Not `Sendable`: a Lua state belongs to one thread.
final class LuaState {
    let L: OpaquePointer
    /// Registry slots whose `LuaReference` went away; freed at the next `stack` access.
    var pendingUnrefs: [Int32] = []
    /// This state's live Swift-function boxes (see `SwiftFunctionBoxCounter`).
    let swiftFunctionBoxes = SwiftFunctionBoxCounter()

    /// Creates a bare state (no libraries).
    /// - Throws: `LuaError.memory` when Lua cannot allocate a state.
    init() throws {
        guard let L = luaL_newstate() else { throw LuaError.memory("cannot create a Lua state") }
        luamp_use_allocator(L)   // allocation failures end as Lua's memory error (memory_shims.c)
        self.L = L
        swiftFunctionBoxes.install(in: L)
    }

    deinit { lua_close(L) }

    /// The state's stack, after freeing registry slots Swift no longer references.
    var stack: LuaStack {
        if !pendingUnrefs.isEmpty {
            for r in pendingUnrefs { luaL_unref(L, luamp_registryindex(), r) }
            pendingUnrefs.removeAll()
        }
        return LuaStack(L)
    }

    /// Pops the top value into a new registry reference. Stack: [-1, +0].
    func reference(fromTopOf s: LuaStack) -> LuaReference {
        let typeName = s.typeName(at: -1)
        let id = String(UInt(bitPattern: s.toPointer(-1)), radix: 16)
        let ref = luaL_ref(L, luamp_registryindex())
        return LuaReference(state: self, ref: ref, typeName: typeName, id: "0x" + id)
    }
}

@available(*, unavailable, message: "a Lua state belongs to one thread")
extension LuaState: Sendable {}
