// A remote pool's AsyncResult as something mp.wait / mp.as_completed wait for, beside local
// futures, processes, pipe ends and queues (docs/cluster.md, "Waiting").
internal import CLua
internal import LuaMPShims

/// Adapter over a `mp.RemoteAsyncResult` table: `waitReady` pcalls its Lua `poll` method (which
/// reads the pool's finished results from Redis without blocking and runs due callbacks). It has
/// no descriptor worth polling (results wait in a Redis list, not on the socket), so waits over it
/// re-check every `HostWait.shortSlice`.
final class RemoteResultWaitable: MPWaitable {
    private let ref: Int32
    private var failed = false
    private var done = false
    /// Where `ref` is freed (the runtime that made it).
    private let garbage: RegistryGarbage

    init(_ s: LuaStack, _ i: Int32) {
        garbage = RuntimeState.of(s).garbage
        lua_pushvalue(s.L, i)
        ref = luaL_ref(s.L, s.registryIndex())
    }

    deinit { garbage.append(ref) }

    func waitReady(_ s: LuaStack) throws -> Bool {
        if done { return true }
        let base = s.top
        _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(ref))
        guard lua_getmetatable(s.L, -1) != 0, s.rawGet(-1, field: "poll") == .function else {
            s.top = base
            throw MPError("TypeError", "not a remote AsyncResult")
        }
        lua_rotate(s.L, base + 1, 1)      // poll, result, metatable
        s.pop()
        if luamp_pcall(s.L, 1, 2, 0) != LUA_OK {
            let e = luaL_ref(s.L, s.registryIndex())
            s.top = base
            garbage.append(e)
            throw HostWaitRegistryError(ref: e)
        }
        done = lua_toboolean(s.L, -2) != 0
        failed = lua_toboolean(s.L, -1) != 0
        s.top = base
        return done
    }

    func waitDescriptors() -> [Int32] { [] }
    var waitFailed: Bool { failed }
}

extension MPModule {
    /// Lets mp.wait / mp.as_completed take remote results (called once, when the cluster loads).
    static func registerRemoteWaitables() {
        Waitables.register(metatable: "mp.RemoteAsyncResult") { s, i in RemoteResultWaitable(s, i) }
    }
}
