// mp's error values: tables with `kind`, `message` and a readable __tostring (docs/api.md, "Errors").
internal import CLua
internal import LuaMPShims

/// An error `mp` raises as a Lua table: `{kind = "Empty", message = "…", …}` with a shared
/// metatable (`__name = "mp.Error"`, `__tostring` giving `kind: message` and any traceback).
///
/// Kinds: `Empty`, `Full`, `EOFError`, `TimeoutError`, `BrokenBarrierError`, `RemoteError`
/// (plus `traceback`), `WorkerLost` (plus `pid` and `signal` or `exitcode`), `SendError`,
/// `DecodeError`.
struct MPError: LuaValueError, CustomStringConvertible, @unchecked Sendable {  // fields hold only plain values
    var kind: String
    var message: String
    /// Extra fields, e.g. `traceback`, `pid`, `signal`, `exitcode`.
    var fields: [(String, LuaValue)] = []

    init(_ kind: String, _ message: String, _ fields: [(String, LuaValue)] = []) {
        self.kind = kind
        self.message = message
        self.fields = fields
    }

    var description: String { "\(kind): \(message)" }

    /// What the decoder throws when memory runs out; `Codec` turns it into Lua's memory error.
    static var outOfMemory: MPError { MPError("MemoryError", "not enough memory") }

    /// Pushes the error table. Stack: [-0, +1].
    func pushError(onto s: LuaStack) {
        s.newTable(hashCount: Int32(2 + fields.count))
        s.push(kind); s.rawSet(-2, field: "kind")
        s.push(message); s.rawSet(-2, field: "message")
        for (k, v) in fields {
            if (try? s.push(v)) == nil { s.pushNil() }   // fields are luamp's own values: never fails
            s.rawSet(-2, field: k)
        }
        MPError.pushMetatable(s)
        lua_setmetatable(s.L, -2)
    }

    /// The shared metatable, created once per state in the registry. Stack: [-0, +1].
    static func pushMetatable(_ s: LuaStack) {
        if luaL_newmetatable(s.L, "mp.Error") != 0 {
            s.pushFunction(name: "__tostring") { s in
                let kind = s.rawGet(1, field: "kind") == .string ? s.toString(-1)! : "Error"
                let msg = s.rawGet(1, field: "message") == .nil ? "" : s.describe(-1)
                var text = "\(kind): \(msg)"
                if s.rawGet(1, field: "traceback") == .string, let tb = s.toString(-1), !tb.isEmpty {
                    text += "\n" + tb
                }
                s.push(text)
                return 1
            }
            s.rawSet(-2, field: "__tostring")
        }
    }

    /// Reads an mp error table at `i` back (kind and message), or nil if it is not one.
    static func read(_ s: LuaStack, at i: Int32) -> MPError? {
        guard s.type(at: i) == .table else { return nil }
        return s.preservingTop {
            guard s.rawGet(i, field: "kind") == .string, let kind = s.toString(-1) else { return nil }
            let msg = s.rawGet(i, field: "message") == .string ? s.toString(-1) ?? "" : ""
            return MPError(kind, msg)
        }
    }
}
