// Handles: how the codec sends mp objects (locks, queues, values, …) — the extension point.
internal import CLua
import Synchronization
//
// An mp object is a full userdata whose metatable has the field `__mpkind` (a string such as
// "Lock"). Each kind registers an encoder (userdata → bytes naming the object, e.g. its arena
// offset) and a decoder (bytes → pushes an equivalent userdata in the receiving process).
// The codec looks up `__mpkind` on any userdata it meets; without a registered kind the
// userdata is not sendable.

/// How one kind of mp object crosses process boundaries.
struct HandleKind: @unchecked Sendable {  // its closures are stateless functions
    /// The `__mpkind` name, e.g. "Lock".
    let name: String
    /// Bytes that let another process of the tree re-create the object at `index`.
    let encode: (LuaStack, Int32) throws -> [UInt8]
    /// Pushes the object described by `bytes`. Stack: [-0, +1].
    /// - Throws: `MPError("DecodeError", …)` when the bytes do not describe a valid object.
    let decode: (LuaStack, UnsafeRawBufferPointer) throws -> Void
}

/// The registry of sendable mp object kinds (filled by each capability's installer).
///
/// Runtimes may be created on several threads of an embedding app (and `swift test` does), so
/// the registry is behind a mutex. Each kind registers once per process, from a global `let`
/// initializer its installer touches; registering a name again would replace it.
enum Handles {
    private static let registry = Mutex<[String: HandleKind]>([:])

    static func register(_ kind: HandleKind) {
        registry.withLock { $0[kind.name] = kind }
    }

    /// The registered kind called `name`, if any.
    static func kind(named name: String) -> HandleKind? {
        registry.withLock { $0[name] }
    }

    /// The `__mpkind` of the userdata at `i`, or nil if it is not an mp object. Stack: [-0, +0].
    static func kindName(_ s: LuaStack, at i: Int32) -> String? {
        s.preservingTop {
            guard s.type(at: i) == .userdata, lua_getmetatable(s.L, i) != 0 else { return nil }
            guard s.rawGet(-1, field: "__mpkind") == .string else { return nil }
            return s.toString(-1)
        }
    }
}
