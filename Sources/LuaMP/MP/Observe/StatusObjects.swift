// StatusObjects: the mp objects created in this process that mp.status() reports (a weak table, so they are never kept alive).
internal import CLua

/// Objects created here that `mp.status()` lists (queues), kept in a weak-keyed registry table
/// `{[object] = kind}`: reporting never keeps an object alive.
enum StatusObjects {
    static let registryKey = "luamp.status.objects"

    /// Records the object on top of the stack as `kind`. Stack: [-0, +0].
    static func add(_ s: LuaStack, kind: String) {
        s.preservingTop {
            let obj = s.top
            guard s.checkStack(6) else { return }
            if s.rawGet(s.registryIndex(), field: registryKey) != .table {
                s.pop()
                s.newTable()
                s.newTable()
                s.push("k"); s.rawSet(-2, field: "__mode")
                lua_setmetatable(s.L, -2)
                s.pushValue(-1)
                s.rawSet(s.registryIndex(), field: registryKey)
            }
            s.pushValue(obj)
            s.push(kind)
            lua_rawset(s.L, -3)
        }
    }
}
