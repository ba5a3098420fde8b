// SharedObject: the Lua face of arena objects — userdata holding an offset, per-kind metatables, handles.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// What a Lua userdata for an arena object holds (Lua-owned memory, plain data only).
struct SharedRef {
    /// The kind's magic (as in the arena object): lets hot paths check the userdata's kind
    /// without a metatable lookup (`KindTag.ref`).
    var kindMagic: UInt32
    /// Offset of the object in the arena (its first UInt32 is the kind's magic).
    var offset: UInt64
    /// This userdata counts in its process's hold on the object (`SharedHolds`): it was created
    /// or decoded in process `holder` (inherited copies in a forked child do not count).
    var counted: Bool
    /// The pid of the process whose hold counts this userdata.
    var holder: UInt32
    /// `CurrentProcess.forkGeneration` when the userdata was made.
    var generation: UInt64
}

/// A method of an arena kind: a Swift function that captures nothing mutable (kinds are shared
/// by every runtime of the process, so their functions must be `Sendable`).
typealias KindMethod = @Sendable (LuaStack) throws -> Int32

/// The description of one kind of arena-backed Lua object (Lock, Event, Value, a queue, …).
///
/// Immutable: every property is a `let` set by the one initializer, so a kind is `Sendable` and
/// lives in a plain `static let`. A kind is a class because it is
/// shared (registered once, held by `SharedHolds`), never copied.
///
/// Arena layout rule: every object starts with `UInt32 magic` (the kind's tag) so a handle
/// decoder can check that an offset really holds this kind.
final class SharedKind: Sendable {
    /// The `__mpkind` and the metatable's name suffix (`"Lock"` → registry `"mp.Lock"`).
    let name: String
    /// The tag stored in the object's first 4 bytes.
    let magic: UInt32
    /// The object's size in the arena (decoders check the block is at least this big).
    let bytes: Int
    /// The hooks: what Lua sees of the object and how it is freed.
    let hooks: Hooks

    /// The kind's methods, fields and lifetime hooks; every one is optional.
    struct Hooks: Sendable {
        /// Methods (`obj:name(...)`); argument 1 is the object.
        var methods: [(String, KindMethod)] = []
        /// Methods written in Lua: (name, chunk source). The chunk receives a helper table
        /// (`monotonic`) as `...` and returns the function. Lua is used where the method calls
        /// user functions and must let their errors (any value) pass through unchanged (`with`,
        /// `wait_for`).
        var luaMethods: [(String, String)] = []
        /// Hot methods as context-free functions (see FastFunction.swift).
        var fastMethods: [(String, FastFunction)] = []
        /// Fast `__index`/`__newindex` replacing `getField` and the methods lookup (the function
        /// must find methods itself: `SharedKinds.pushMethod`).
        var fastIndex: FastFunction? = nil
        var fastNewIndex: FastFunction? = nil
        /// C fast paths (`LUAMP_FAST_*`, sync_fast.c) by fast method name or `"__index"` /
        /// `"__newindex"`: the C function does the common case and calls the Swift function above
        /// for everything else.
        var cFast: [String: Int32] = [:]
        /// Field reads (`obj.name`) tried before methods: push the value and return true, or
        /// return false for "no such field". Stack: [-0, +1] when it returns true.
        var getField: (@Sendable (LuaStack, SharedRef, String) throws -> Bool)? = nil
        /// Frees the object's arena memory (and memory only it references) once no process holds
        /// it and no message names it (`SharedHolds`). Nil: never freed (lives as long as the arena).
        var release: (@Sendable (Arena, UInt64) -> Void)? = nil
        /// Forgets per-process state kept for the object (keyed by offset) when this process's hold
        /// on it ends: the offset may name another object later.
        var forget: (@Sendable (UInt64) -> Void)? = nil
        /// Extra metamethods (e.g. `__len`).
        var metamethods: [(String, KindMethod)] = []
        /// What `tostring(obj)` shows, Python-repr style (`<Queue size=3 maxsize=0>`). It must read
        /// the object's state without blocking (plain or relaxed loads; never a lock), so an
        /// approximate answer is fine. It may push and pop scratch values (net stack effect zero).
        /// Nil: `mp.<name>: 0x<offset>`.
        var describe: (@Sendable (LuaStack, Arena, SharedRef) -> String)? = nil
    }

    /// The registry name of the metatable, `"mp.<name>"`.
    var metatableName: String { "mp." + name }

    init(name: String, magic: UInt32, bytes: Int, _ hooks: Hooks) {
        self.name = name
        self.magic = magic
        self.bytes = bytes
        self.hooks = hooks
    }
}

/// The registry of arena-backed kinds and their Lua plumbing.
enum SharedKinds {
    /// Registers `kind`'s handle codec with `Handles` (and the fork handlers arena objects rely
    /// on). Each capability calls it once per process per kind, from the initializer of a global
    /// `let` its installer touches (`syncKindsRegistered`, `queueKindsRegistered`): Swift runs
    /// such initializers once, thread-safely, so runtimes created on several threads never race.
    static func register(_ kind: SharedKind) {
        CurrentProcess.installForkHandlers()
        Handles.register(HandleKind(
            name: kind.name,
            encode: { s, i in try SharedKinds.encode(s, i, kind) },
            decode: { s, bytes in try SharedKinds.decode(s, bytes, kind) }))
    }

    // MARK: userdata

    /// Pushes a new userdata for the object at `offset`. Stack: [-0, +1].
    /// - Parameter owned: true for an object this process just created: the block's reference
    ///   count of 1 becomes this process's hold, and the object is freed once every holder and
    ///   message let go (`SharedHolds`). False: an uncounted userdata for an object that lives
    ///   as long as the arena or as long as the object containing it (a Value's lock).
    static func push(_ s: LuaStack, _ kind: SharedKind, offset: UInt64, owned: Bool) {
        let counted = owned && SharedHolds.counts(kind)
        pushUserdata(s, kind, offset: offset, counted: counted)
        if counted { SharedHolds.created(offset, kind) }
    }

    private static func pushUserdata(_ s: LuaStack, _ kind: SharedKind, offset: UInt64, counted: Bool) {
        let p = luamp_newuserdata(s.L, MemoryLayout<SharedRef>.size)!
        p.initializeMemory(as: SharedRef.self, repeating: SharedRef(
            kindMagic: kind.magic, offset: offset, counted: counted, holder: CurrentProcess.pid,
            generation: CurrentProcess.forkGeneration), count: 1)
        pushMetatable(s, kind)
        lua_setmetatable(s.L, -2)
    }

    /// The userdata at `i` if it is an object of `kind`, else nil. Stack: [-0, +0].
    static func toRef(_ s: LuaStack, _ i: Int32, _ kind: SharedKind) -> UnsafeMutablePointer<SharedRef>? {
        SharedRef.at(s, i, magic: kind.magic)
    }

    /// Argument `i` as an object of `kind`.
    /// - Throws: `LuaArgumentError` ("mp.Lock expected, got table").
    static func check(_ s: LuaStack, _ i: Int32, _ kind: SharedKind) throws -> SharedRef {
        guard let r = toRef(s, i, kind) else {
            let got = Handles.kindName(s, at: i).map { "mp." + $0 } ?? s.typeName(at: i)
            throw LuaArgumentError(i, "mp.\(kind.name) expected, got \(got)")
        }
        return r.pointee
    }

    /// Another arena object now references the object of the userdata at `i`: it will never be
    /// freed (`Arena.pin`).
    static func markShared(_ s: LuaStack, _ i: Int32) {
        guard s.type(at: i) == .userdata, let p = s.toUserdata(i), Handles.kindName(s, at: i) != nil,
              let a = Arena.current else { return }
        a.pin(p.assumingMemoryBound(to: SharedRef.self).pointee.offset)
    }

    /// The metatable of `kind` (created on first use in this Lua state). Stack: [-0, +1].
    static func pushMetatable(_ s: LuaStack, _ kind: SharedKind) {
        guard luaL_newmetatable(s.L, "mp." + kind.name) != 0 else { return }
        let mt = s.top
        s.push(kind.name); s.rawSet(mt, field: "__mpkind")
        s.push("mp." + kind.name); s.rawSet(mt, field: "__name")
        s.newTable(hashCount: Int32(kind.hooks.methods.count + kind.hooks.luaMethods.count))
        for (name, fn) in kind.hooks.methods { s.setFunction(-1, name, fn) }
        if !kind.hooks.cFast.isEmpty {
            precondition(MemoryLayout<SharedRef>.size == LUAMP_SHARED_REF_SIZE
                         && MemoryLayout<SharedRef>.offset(of: \SharedRef.kindMagic) == Int(LUAMP_SHARED_REF_MAGIC_OFFSET)
                         && MemoryLayout<SharedRef>.offset(of: \SharedRef.offset) == Int(LUAMP_SHARED_REF_OFFSET_OFFSET),
                         "SharedRef layout differs from luamp_layouts.h (what sync_fast.c reads)")
        }
        for (name, fn) in kind.hooks.fastMethods { s.setFastFunction(-1, name, fn, cFast: kind.hooks.cFast[name]) }
        for (name, source) in kind.hooks.luaMethods {
            do {
                try s.load(source, name: "=mp." + kind.name + "." + name, mode: "t")
                s.newTable()
                s.setFunction(-1, "monotonic") { s in s.push(Clock.monotonicSeconds()); return 1 }
                try s.pcall(nargs: 1, nresults: 1)
                s.rawSet(-2, field: name)
            } catch {
                preconditionFailure("built-in Lua method mp.\(kind.name).\(name) failed to load: \(error)")
            }
        }
        if let fast = kind.hooks.fastIndex {
            s.rawSet(mt, field: "__methods")     // the fast __index looks methods up here
            if let w = kind.hooks.cFast["__index"] { luamp_push_sync_fast(s.L, w, fast) } else { luamp_push_fast_function(s.L, fast) }
            s.rawSet(mt, field: "__index")
            pushCommonMetamethods(s, mt, kind)
            return
        }
        guard let getField = kind.hooks.getField else {
            s.rawSet(mt, field: "__index")       // methods only: a plain table is fastest
            pushCommonMetamethods(s, mt, kind)
            return
        }
        s.pushFunction(name: "__index", upvalues: 1) { s in
            let r = try SharedKinds.check(s, 1, kind)
            if s.type(at: 2) == .string, let key = s.toString(2) {
                if try getField(s, r, key) { return 1 }
                s.rawGet(s.upvalueIndex(2), field: key)
                return 1
            }
            if s.type(at: 2) == .number, try getField(s, r, "#index") { return 1 }
            s.pushNil()
            return 1
        }
        s.rawSet(mt, field: "__index")
        pushCommonMetamethods(s, mt, kind)
    }

    /// __newindex, __tostring, __eq, __gc of `kind` into the metatable at `mt`. Stack: [-0, +0].
    private static func pushCommonMetamethods(_ s: LuaStack, _ mt: Int32, _ kind: SharedKind) {
        if let fast = kind.hooks.fastNewIndex {
            s.setFastFunction(mt, "__newindex", fast, cFast: kind.hooks.cFast["__newindex"])
        }
        for (name, fn) in kind.hooks.metamethods { s.setFunction(mt, name, fn) }
        s.setFunction(mt, "__tostring") { s in
            let r = try SharedKinds.check(s, 1, kind)
            if let describe = kind.hooks.describe, let a = Arena.current {
                s.push(describe(s, a, r))
            } else {
                s.push("mp.\(kind.name): 0x\(String(r.offset, radix: 16))")
            }
            return 1
        }
        s.setFunction(mt, "__eq") { s in
            guard let a = SharedKinds.toRef(s, 1, kind), let b = SharedKinds.toRef(s, 2, kind) else { s.push(false); return 1 }
            s.push(a.pointee.offset == b.pointee.offset)
            return 1
        }
        if kind.hooks.release != nil {
            s.setFunction(mt, "__gc") { s in
                guard let p = s.toUserdata(1)?.assumingMemoryBound(to: SharedRef.self) else { return 0 }
                if p.pointee.counted, p.pointee.holder == CurrentProcess.pid {
                    p.pointee.counted = false
                    SharedHolds.collected(p.pointee.offset)
                }
                return 0
            }
        }
    }

    /// For a fast `__index`: pushes method `key` (stack slot 2) of the object at slot 1 from its
    /// metatable's `__methods`, or nil. Stack: [-0, +1].
    static func pushMethod(_ s: LuaStack) {
        guard lua_getmetatable(s.L, 1) != 0 else { s.pushNil(); return }
        s.rawGet(-1, field: "__methods")
        s.remove(-2)
        guard s.type(at: -1) == .table else { return }
        s.pushValue(2)
        lua_rawget(s.L, -2)
        s.remove(-2)
    }

    // MARK: handles (what the codec sends)

    /// Handle bytes: arena id (8, little-endian) + offset (8, little-endian).
    static func encode(_ s: LuaStack, _ i: Int32, _ kind: SharedKind) throws -> [UInt8] {
        guard let r = toRef(s, i, kind) else { throw LuaRaise("not an mp.\(kind.name)") }
        let a = try Arena.require()
        if SharedHolds.counts(kind) { SharedHolds.messageReference(r.pointee.offset, kind, a) }
        var out = [UInt8](); out.reserveCapacity(16)
        withUnsafeBytes(of: a.id.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: r.pointee.offset.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// Checks handle bytes and pushes a userdata for the object. Stack: [-0, +1].
    /// - Throws: `MPError("DecodeError", …)` for a wrong length, another tree's arena, an offset
    ///   that is not a live block, or a block holding another kind.
    static func decode(_ s: LuaStack, _ bytes: UnsafeRawBufferPointer, _ kind: SharedKind) throws {
        guard bytes.count == 16 else { throw MPError("DecodeError", "bad mp.\(kind.name) handle (\(bytes.count) bytes)") }
        let id = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let off = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard let a = Arena.current, a.id == id else {
            throw MPError("DecodeError", "mp.\(kind.name) handle from another process tree")
        }
        try validate(a, off, kind)
        let counted = SharedHolds.counts(kind)
        pushUserdata(s, kind, offset: off, counted: counted)
        if counted { SharedHolds.decoded(off, kind, a) }
    }

    /// Throws `DecodeError` unless `offset` holds a live object of `kind`.
    static func validate(_ a: Arena, _ offset: UInt64, _ kind: SharedKind) throws {
        guard a.isLiveBlock(offset, minBytes: kind.bytes),
              luamp_atomic_load32(a.pointer(offset).assumingMemoryBound(to: UInt32.self)) == kind.magic else {
            throw MPError("DecodeError", "mp.\(kind.name) handle does not name a live object")
        }
    }
}
