// The pool's function cache: each task function is encoded once and sent to each worker once, then named by id.
internal import CLua
internal import LuaMPShims

/// One function as the workers know it: an id and the `F` frame that defines it.
final class FunctionEntry {
    let id: UInt32
    /// The complete `F` frame (header + id + codec encoding of the function).
    let defineFrame: [UInt8]
    /// The encoding of the function's upvalues when it was sent (empty for C functions).
    let upvalues: [UInt8]

    init(id: UInt32, defineFrame: [UInt8], upvalues: [UInt8]) {
        self.id = id
        self.defineFrame = defineFrame
        self.upvalues = upvalues
    }
}

/// Maps task functions to ids. The key is the function's identity (a Lua table `fn → id` holds
/// the function, so its address is never reused while cached) plus its upvalues' values as
/// sent: each use re-encodes only the upvalues (cheap: usually `_ENV` and a few scalars) and
/// compares the bytes; when they differ (an upvalue changed) the function gets a new id and is
/// sent again. Bytecode never changes for a given closure, so it is dumped once per id.
/// At most `limit` functions are cached; past that the cache starts over (workers are told
/// with a `C` frame through `generation`).
struct FunctionCache {
    static let limit = 256
    /// Registry reference to the `fn → id` table.
    private var tableRef: Int32 = LUA_NOREF
    private var entries: [UInt32: FunctionEntry] = [:]
    private var nextID: UInt32 = 1
    /// Bumped when the cache starts over; a worker that saw an older generation gets `C` first.
    private(set) var generation = 0

    /// The entry for the function at `fi`, encoding and caching it when needed.
    /// - Throws: `MPError("SendError", …)` naming `fn` when it cannot be sent.
    mutating func entry(_ s: LuaStack, at fi: Int32) throws -> FunctionEntry {
        let fi = s.absIndex(fi)
        let L = s.L
        let reg = s.registryIndex()
        if tableRef == LUA_NOREF {
            s.newTable()
            tableRef = luaL_ref(L, reg)
        }
        _ = lua_rawgeti(L, reg, lua_Integer(tableRef))
        let table = s.top
        defer { s.top = table - 1 }
        s.pushValue(fi)
        let known = lua_rawget(L, table) == LUA_TNUMBER ? UInt32(truncatingIfNeeded: s.toInteger(-1) ?? 0) : 0
        s.pop()
        let isC = lua_iscfunction(L, fi) != 0
        let ups = isC ? [] : try Self.upvalueBytes(s, fi)
        if known != 0, let e = entries[known], e.upvalues == ups { return e }

        if entries.count >= Self.limit {
            entries.removeAll()
            generation += 1
            s.newTable()
            lua_rawseti(L, reg, lua_Integer(tableRef))
            _ = lua_rawgeti(L, reg, lua_Integer(tableRef))
            s.replace(table)
        }
        let id = nextID
        nextID &+= 1
        var frame: [UInt8] = []
        let start = PoolFrame.begin(&frame, kind: PoolFrame.define)
        frame.appendLE(id)
        try Codec.encode(s, at: fi, path: "fn", into: &frame)
        try PoolFrame.finish(&frame, from: start)
        let e = FunctionEntry(id: id, defineFrame: frame, upvalues: ups)
        entries[id] = e
        s.pushValue(fi)
        s.push(Int64(id))
        lua_rawset(L, table)
        return e
    }

    /// The codec encoding of the upvalues of the Lua function at `fi` (a tuple message).
    private static func upvalueBytes(_ s: LuaStack, _ fi: Int32) throws -> [UInt8] {
        let L = s.L
        let base = s.top
        defer { s.top = base }
        var n: Int32 = 0
        while true {
            guard s.checkStack(2) else { throw MPError("SendError", "fn: too many upvalues") }
            if lua_getupvalue(L, fi, n + 1) == nil { break }
            n += 1
        }
        if n == 0 { return [] }
        var out: [UInt8] = []
        // Only compared, never sent: handles must not post pipe ends or take references.
        try SendLog.withoutEffects {
            do {
                try Codec.encodeTuple(s, from: base + 1, count: n, path: "fn", into: &out)
            } catch {
                _ = try Codec.encode(s, at: fi, path: "fn")   // names the upvalue in the SendError
                throw error
            }
        }
        return out
    }

    /// Forgets everything (the pool ends). Stack: [-0, +0].
    mutating func release(_ s: LuaStack) {
        if tableRef != LUA_NOREF { luaL_unref(s.L, s.registryIndex(), tableRef) }
        tableRef = LUA_NOREF
        entries.removeAll()
    }
}
