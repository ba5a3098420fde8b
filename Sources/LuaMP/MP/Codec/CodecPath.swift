// Paths in SendError messages (`args[2].conn`, `value.f.<upvalue x>`): built only when encoding fails.
internal import CLua

/// Why a value cannot be sent, with the path to it collected while the encoder unwinds.
/// Nothing here runs on the success path: components are added only by `catch` blocks.
struct EncodeFailure: Error {
    /// What went wrong, e.g. "cannot send a userdata".
    var message: String
    /// Path components, innermost first (each already formatted: `.name`, `[2]`, `.<upvalue x>`).
    var components: [String] = []

    init(_ message: String) { self.message = message }

    /// The full path under `root` ("args", "value", …).
    /// Paths through more than 16 levels keep the first and last 8 components around `…`.
    func path(root: String) -> String {
        let c = Array(components.reversed())
        if c.count <= 16 { return root + c.joined() }
        return root + c[..<8].joined() + "…" + c[(c.count - 8)...].joined()
    }

    /// The `SendError` users see: message prefixed by the path, plus a `path` field.
    func sendError(root: String) -> MPError {
        let p = path(root: root)
        return MPError("SendError", "\(p): \(message)", [("path", .string(p))])
    }
}

enum CodecPath {
    /// The component for the table key at stack index `k`: `.name` for identifier strings,
    /// `[3]` for integers, `["two words"]` for other strings, `[1.5]`/`[true]`, `[<table>]` otherwise.
    static func component(forKeyAt k: Int32, _ L: OpaquePointer) -> String {
        switch lua_type(L, k) {
        case LUA_TNUMBER:
            if lua_isinteger(L, k) != 0 { return "[\(lua_tointegerx(L, k, nil))]" }
            return "[\(lua_tonumberx(L, k, nil))]"
        case LUA_TSTRING:
            var len = 0
            let p = lua_tolstring(L, k, &len)!
            let b = Array(UnsafeRawBufferPointer(start: p, count: len))
            return LuaLiteral.isIdentifier(b) ? "." + String(decoding: b, as: UTF8.self) : "[\(LuaLiteral.quote(b))]"
        case LUA_TBOOLEAN:
            return lua_toboolean(L, k) != 0 ? "[true]" : "[false]"
        default:
            return "[<\(String(cString: lua_typename(L, lua_type(L, k))))>]"
        }
    }

    /// The component for upvalue `name` of a function: `.<upvalue name>`.
    static func upvalue(_ name: String) -> String { ".<upvalue \(name)>" }

    /// The component for a table's metatable: `.<metatable>`.
    static let metatable = ".<metatable>"

    /// The component for a userdata's `__mp_reduce` result: `.<__mp_reduce>` (constructor) or `.<__mp_reduce arg n>`.
    static func reduce(_ n: Int) -> String { n == 0 ? ".<__mp_reduce>" : ".<__mp_reduce arg \(n)>" }

    /// The component for an error inside a key (a table used as a key): `.<key>`.
    static let key = ".<key>"
}
