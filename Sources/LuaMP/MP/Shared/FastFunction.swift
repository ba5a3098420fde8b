// FastFunction: context-free Swift functions Lua calls directly, for the hottest methods (lock, value access).
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// A Swift function Lua calls through `luamp_push_fast_function`: a plain C function pointer,
/// so a call costs no box lookup, closure context or retain/release (the boxed `SwiftFunction`
/// path costs about twice as much per call). Write it as a closure literal that captures
/// nothing and forwards to `runFast`:
///
/// ```swift
/// static let acquire: FastFunction = { L, argn in runFast(L, argn) { s in … } }
/// ```
typealias FastFunction = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?) -> Int32

/// Runs `body` for a `FastFunction` and turns a thrown error into the trampoline's protocol
/// (the same rules as the boxed path's dispatcher): `LuaArgumentError` → `LUAMP_ARGERROR`,
/// value errors (`MPError`) → their value, anything else → its message; the C side raises.
@inline(__always)
func runFast(_ L: OpaquePointer?, _ argn: UnsafeMutablePointer<Int32>?, _ body: (LuaStack) throws -> Int32) -> Int32 {
    callForLua(LuaStack(L!), argn, body)
}

extension SharedRef {
    /// The userdata at `i` if it is an arena object of the kind with `magic`, else nil: the one
    /// way luamp recognises its arena objects. The check is a full userdata of exactly
    /// `SharedRef`'s size carrying the kind's magic — as strong as a metatable check in practice
    /// (Lua code cannot forge userdata contents; only luamp makes these) and a third of the cost
    /// of `luaL_testudata`'s registry lookup. Stack: [-0, +0].
    @inline(__always)
    static func at(_ s: LuaStack, _ i: Int32, magic: UInt32) -> UnsafeMutablePointer<SharedRef>? {
        guard let p = at(s, i), p.pointee.kindMagic == magic else { return nil }
        return p
    }

    /// The userdata at `i` if it is an arena object of any kind (read its `kindMagic` to tell
    /// which): for code serving several kinds at once (the three queue kinds). Stack: [-0, +0].
    @inline(__always)
    static func at(_ s: LuaStack, _ i: Int32) -> UnsafeMutablePointer<SharedRef>? {
        guard lua_type(s.L, i) == LUA_TUSERDATA, lua_rawlen(s.L, i) == MemoryLayout<SharedRef>.size else { return nil }
        return lua_touserdata(s.L, i)?.assumingMemoryBound(to: SharedRef.self)
    }
}

/// A kind's identity for fast type checks: trivially copyable (no retain).
struct KindTag: Sendable {
    /// The kind's magic, also stored in every userdata of the kind (`SharedRef.kindMagic`).
    let magic: UInt32
    /// `"mp.Lock"`, for messages.
    let name: StaticString

    init(_ name: StaticString, magic: UInt32) {
        self.name = name
        self.magic = magic
    }

    /// Argument `i` as an object of this kind (`SharedRef.at`, the one identity check).
    /// - Throws: `LuaArgumentError` ("mp.Lock expected, got table").
    @inline(__always)
    func ref(_ s: LuaStack, _ i: Int32) throws -> UnsafeMutablePointer<SharedRef> {
        if let p = SharedRef.at(s, i, magic: magic) { return p }
        let got = Handles.kindName(s, at: i).map { "mp." + $0 } ?? s.typeName(at: i)
        throw LuaArgumentError(i, "\(name) expected, got \(got)")
    }
}

extension LuaStack {
    /// Sets `t[name]` to a fast function, or to the C fast path `cFast` (`LUAMP_FAST_*`) that
    /// falls back to `fn`. Stack: [-0, +0].
    func setFastFunction(_ t: Int32, _ name: String, _ fn: FastFunction, cFast: Int32? = nil) {
        let t = absIndex(t)
        if let w = cFast { luamp_push_sync_fast(L, w, fn) } else { luamp_push_fast_function(L, fn) }
        rawSet(t, field: name)
    }
}

extension LuaStack {
    /// True when the value at `i` is the string `key` (byte comparison, no Swift String made).
    @inline(__always)
    func isKey(_ i: Int32, _ key: StaticString) -> Bool {
        guard lua_type(L, i) == LUA_TSTRING, let b = toBytes(i), b.count == key.utf8CodeUnitCount else { return false }
        return memcmp(b.baseAddress!, key.utf8Start, b.count) == 0
    }
}
