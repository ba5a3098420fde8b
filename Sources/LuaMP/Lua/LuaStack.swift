// LuaStack: a non-owning view of a lua_State's stack, with the primitive operations luamp needs.
//
// The rule every helper here keeps: Swift never calls a Lua API function that can raise an
// error (manual letters `e`/`v`), so `longjmp` never crosses a Swift frame. Only `m` calls
// (memory errors) are used unprotected, for small sizes: when memory runs out under Swift,
// luamp's allocator spends its reserve so they succeed (memory_shims.c), and sizes taken from
// input go through protected C helpers (luamp_pcreatetable, luamp_ppushlstring). Anything that
// may run metamethods is raw or goes through a C helper under lua_pcall. Raising is left to
// the C trampoline (lua_shims.c).
internal import CLua
internal import LuaMPShims

/// Lua's basic types, as `lua_type` reports them.
enum LuaType: Int32 {
    case none = -1, `nil` = 0, boolean, lightUserdata, number, string, table, function, userdata, thread

    var name: String {
        switch self {
        case .none: return "no value"
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .lightUserdata, .userdata: return "userdata"
        case .number: return "number"
        case .string: return "string"
        case .table: return "table"
        case .function: return "function"
        case .thread: return "thread"
        }
    }
}

/// A borrowed `lua_State*`: valid for as long as the call that handed it out.
/// Not `Sendable`: a Lua state belongs to one thread.
struct LuaStack {
    let L: OpaquePointer

    init(_ L: OpaquePointer) { self.L = L }

    // MARK: stack top

    var top: Int32 {
        get { lua_gettop(L) }
        nonmutating set { lua_settop(L, newValue) }
    }

    func absIndex(_ i: Int32) -> Int32 { lua_absindex(L, i) }
    func pop(_ n: Int32 = 1) { luamp_pop(L, n) }
    func pushValue(_ i: Int32) { lua_pushvalue(L, i) }
    func insert(_ i: Int32) { luamp_insert(L, i) }
    func remove(_ i: Int32) { luamp_remove(L, i) }
    func replace(_ i: Int32) { luamp_replace(L, i) }

    /// Grows the stack so `n` more slots fit. Returns false when it cannot.
    @discardableResult
    func checkStack(_ n: Int32) -> Bool { lua_checkstack(L, n) != 0 }

    /// Makes room for `n` more values, or throws: for pushes whose count comes from data.
    /// - Throws: `LuaRaise` when `n` is beyond a million or Lua cannot grow the stack.
    func ensureStack(_ n: Int) throws {
        guard n < 1_000_000, lua_checkstack(L, Int32(n) + 1) != 0 else {
            throw LuaRaise("too many values (\(n)) for the Lua stack")
        }
    }

    /// Runs `body` and restores the stack top afterwards (mlua's StackGuard).
    func preservingTop<T>(_ body: () throws -> T) rethrows -> T {
        let saved = lua_gettop(L)
        defer { lua_settop(L, saved) }
        return try body()
    }

    // MARK: types

    func type(at i: Int32) -> LuaType { LuaType(rawValue: lua_type(L, i)) ?? .none }
    func typeName(at i: Int32) -> String { type(at: i).name }
    func isNoneOrNil(_ i: Int32) -> Bool { lua_type(L, i) <= 0 }
    func isInteger(_ i: Int32) -> Bool { lua_isinteger(L, i) != 0 }

    // MARK: push (all [-0, +1]; may only raise on out-of-memory)

    func pushNil() { lua_pushnil(L) }
    func push(_ b: Bool) { lua_pushboolean(L, b ? 1 : 0) }
    func push(_ i: Int64) { lua_pushinteger(L, lua_Integer(i)) }
    func push(_ i: Int) { lua_pushinteger(L, lua_Integer(i)) }
    func push(_ d: Double) { lua_pushnumber(L, d) }
    func push(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            _ = buf.withMemoryRebound(to: CChar.self) { lua_pushlstring(L, $0.baseAddress, $0.count) }
        }
    }
    func push(bytes: UnsafeRawBufferPointer) {
        _ = lua_pushlstring(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
    }
    func push(bytes: [UInt8]) { bytes.withUnsafeBytes { push(bytes: $0) } }
    func newTable(arrayCount: Int32 = 0, hashCount: Int32 = 0) { lua_createtable(L, arrayCount, hashCount) }
    func pushGlobals() { luamp_pushglobaltable(L) }

    // MARK: read (never converts in place except numbers to strings, which only allocates)

    func toBool(_ i: Int32) -> Bool { lua_toboolean(L, i) != 0 }
    func toInteger(_ i: Int32) -> Int64? {
        var ok: Int32 = 0
        let v = luamp_tointegerx(L, i, &ok)
        return ok != 0 ? Int64(v) : nil
    }
    func toNumber(_ i: Int32) -> Double? {
        var ok: Int32 = 0
        let v = luamp_tonumberx(L, i, &ok)
        return ok != 0 ? v : nil
    }
    /// The raw bytes of a string (or number, converted in place) at `i`; nil for other types.
    /// The buffer lives as long as the value stays on the stack.
    func toBytes(_ i: Int32) -> UnsafeRawBufferPointer? {
        var len = 0
        guard let p = luamp_tolstring(L, i, &len) else { return nil }
        return UnsafeRawBufferPointer(start: p, count: len)
    }
    /// A Swift string from a Lua string or number at `i` (invalid UTF-8 is repaired).
    func toString(_ i: Int32) -> String? {
        guard let b = toBytes(i) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }
    func toUserdata(_ i: Int32) -> UnsafeMutableRawPointer? { lua_touserdata(L, i) }
    func toPointer(_ i: Int32) -> UnsafeRawPointer? { lua_topointer(L, i) }

    /// `tostring(v)` under protection (runs `__tostring`/`__name`): pushes nothing, returns the text.
    func describe(_ i: Int32) -> String {
        let idx = absIndex(i)
        if luamp_ptolstring(L, idx) == LUA_OK {
            defer { pop() }
            return toString(-1) ?? "?"
        }
        pop()
        return "(\(typeName(at: idx)))"
    }

    // MARK: raw table access (no metamethods, so nothing can raise but memory)

    /// t[key] where t is at `t`. Stack: [-0, +1].
    @discardableResult
    func rawGet(_ t: Int32, field: String) -> LuaType {
        let t = absIndex(t)
        push(field)
        return LuaType(rawValue: lua_rawget(L, t)) ?? .none
    }
    /// t[n]. Stack: [-0, +1].
    @discardableResult
    func rawGet(_ t: Int32, index n: Int64) -> LuaType {
        LuaType(rawValue: lua_rawgeti(L, t, lua_Integer(n))) ?? .none
    }
    /// t[field] = top, pops the value. Stack: [-1, +0].
    func rawSet(_ t: Int32, field: String) {
        let t = absIndex(t)
        push(field)
        insert(-2)
        lua_rawset(L, t)
    }
    /// t[n] = top, pops the value. Stack: [-1, +0].
    func rawSet(_ t: Int32, index n: Int64) { lua_rawseti(L, t, lua_Integer(n)) }
    /// Raw length of a table or string.
    func rawLength(_ i: Int32) -> Int64 { Int64(lua_rawlen(L, i)) }

    /// Sets `t[name]` to a Swift function. Stack: [-0, +0].
    func setFunction(_ t: Int32, _ name: String, _ fn: @escaping SwiftFunction) {
        let t = absIndex(t)
        pushFunction(name: name, fn)
        rawSet(t, field: name)
    }

    /// Starts an object's metatable: creates the registry metatable `key` (`luaL_newmetatable`)
    /// with `__name = name` and pushes an empty table for its methods above it. Returns the
    /// metatable's index, or nil when `key` existed already (then only that metatable was
    /// pushed). Stack: [-0, +2], or [-0, +1] when nil.
    func newObjectMetatable(_ key: String, name: String) -> Int32? {
        guard luaL_newmetatable(L, key) != 0 else { return nil }
        let mt = top
        push(name)
        rawSet(mt, field: "__name")
        newTable()
        return mt
    }

    // MARK: registry and globals

    func registryIndex() -> Int32 { luamp_registryindex() }

    /// Global `name`, raw. Stack: [-0, +1].
    @discardableResult
    func getGlobal(_ name: String) -> LuaType {
        pushGlobals()
        let t = rawGet(-1, field: name)
        remove(-2)
        return t
    }
    /// Global `name` = top (raw), pops it. Stack: [-1, +0].
    func setGlobal(_ name: String) {
        pushGlobals()
        insert(-2)
        rawSet(-2, field: name)
        pop()
    }

    // MARK: calling and loading

    /// Calls the function below `nargs` arguments under lua_pcall with a traceback handler.
    /// Stack: [-(nargs+1), +nresults] on success, [-(nargs+1), +0] when it throws.
    /// - Throws: `LuaError` with message and traceback.
    func pcall(nargs: Int32, nresults: Int32) throws {
        let status = luamp_pcall_traceback(L, nargs, nresults)
        if status != LUA_OK { throw popError(status: status) }
    }

    /// Loads a chunk as a function. Stack: [-0, +1] on success, [-0, +0] when it throws.
    /// - Parameters:
    ///   - mode: "bt" (the default: source or bytecode, for code the caller trusts), "t" (source
    ///     only: use it for untrusted input) or "b".
    /// - Throws: `LuaError.syntax` (with `incompleteInput`) or `.memory`.
    func load(_ bytes: UnsafeRawBufferPointer, name: String, mode: String = "bt") throws {
        let status = luamp_loadbuffer(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self),
                                      bytes.count, name, mode)
        if status != LUA_OK { throw popError(status: status) }
    }
    func load(_ source: String, name: String, mode: String = "bt") throws {
        var s = source
        try s.withUTF8 { try load(UnsafeRawBufferPointer($0), name: name, mode: mode) }
    }

    /// Pops the error value left by a failed load or call and turns it into a `LuaError`.
    func popError(status: Int32) -> LuaError {
        let text: String
        if let s = toBytes(-1), type(at: -1) == .string {
            text = String(decoding: s, as: UTF8.self)
        } else {
            text = "(error object is a \(typeName(at: -1)) value)"
        }
        pop()
        switch status {
        case LUA_ERRSYNTAX:
            return .syntax(message: text, incompleteInput: text.hasSuffix("<eof>"))
        case LUA_ERRMEM:
            return .memory(text)
        case LUA_ERRFILE:
            return .file(text)
        default:
            return LuaError.splitTraceback(text)
        }
    }
}
