// SharedMemoryKind: the Lua face of mp.SharedMemory — create/attach, read/write, close/unlink, sending by name.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// What a SharedMemory userdata holds (its user value 1 is the name, a Lua string).
struct ShmRef {
    /// The mapping; nil once closed (or for a zero-length segment).
    var base: UnsafeMutableRawPointer?
    var size: Int
    var closed: Bool
}

enum SharedMemoryKind {
    static let metatable = "mp.SharedMemory"

    /// The SharedMemory at `i`, or nil.
    static func toRef(_ s: LuaStack, _ i: Int32) -> UnsafeMutablePointer<ShmRef>? {
        luaL_testudata(s.L, i, metatable)?.assumingMemoryBound(to: ShmRef.self)
    }

    /// Argument `i` as a SharedMemory. - Throws: `LuaArgumentError`.
    static func check(_ s: LuaStack, _ i: Int32 = 1) throws -> UnsafeMutablePointer<ShmRef> {
        guard let r = toRef(s, i) else { throw LuaArgumentError(i, "mp.SharedMemory expected, got \(s.typeName(at: i))") }
        return r
    }

    /// The name of the SharedMemory at `i` (its user value).
    static func name(_ s: LuaStack, _ i: Int32) -> String {
        lua_getiuservalue(s.L, i, 1)
        defer { s.pop() }
        return s.toString(-1) ?? "?"
    }

    /// Argument `i` as an open SharedMemory. - Throws: `LuaRaise` when it is closed.
    static func open(_ s: LuaStack, _ i: Int32 = 1) throws -> UnsafeMutablePointer<ShmRef> {
        let r = try check(s, i)
        guard !r.pointee.closed else { throw LuaRaise("mp.SharedMemory '\(name(s, i))' is closed") }
        return r
    }

    /// Pushes a new SharedMemory userdata. Stack: [-0, +1].
    static func push(_ s: LuaStack, name: String, base: UnsafeMutableRawPointer?, size: Int) {
        let p = luamp_newuserdata(s.L, MemoryLayout<ShmRef>.size)!
        p.initializeMemory(as: ShmRef.self, repeating: ShmRef(base: base, size: size, closed: false), count: 1)
        s.push(name)
        lua_setiuservalue(s.L, -2, 1)
        pushMetatable(s)
        lua_setmetatable(s.L, -2)
    }

    static func close(_ r: UnsafeMutablePointer<ShmRef>) {
        guard !r.pointee.closed else { return }
        r.pointee.closed = true
        if let b = r.pointee.base { munmap(b, r.pointee.size) }
        r.pointee.base = nil
    }

    /// Checks `offset`, `length` (slots) against the segment; returns them.
    private static func range(_ s: LuaStack, _ r: ShmRef, _ i: Int32, length: Int?, what: String) throws -> (Int, Int) {
        let off = s.isNoneOrNil(i) ? 0 : Int(try s.checkInteger(i))
        guard off >= 0, off <= r.size else { throw LuaArgumentError(i, "offset \(off) outside the segment (0..\(r.size))") }
        let len = try length ?? (s.isNoneOrNil(i + 1) ? r.size - off : Int(s.checkInteger(i + 1)))
        guard len >= 0 else { throw LuaArgumentError(i + 1, "negative length") }
        guard len <= r.size - off else {
            throw LuaRaise("mp.SharedMemory '\(name(s, 1))': \(what) of \(len) bytes at offset \(off) goes past the end (size \(r.size))")
        }
        return (off, len)
    }

    static func pushMetatable(_ s: LuaStack) {
        guard luaL_newmetatable(s.L, metatable) != 0 else { return }
        let mt = s.top
        s.push("SharedMemory"); s.rawSet(mt, field: "__mpkind")
        s.push(metatable); s.rawSet(mt, field: "__name")
        s.newTable(hashCount: 4)
        s.setFunction(-1, "read") { s in
            let r = try open(s)
            let (off, len) = try range(s, r.pointee, 2, length: nil, what: "read")
            if len == 0 { s.push(""); return 1 }
            s.push(bytes: UnsafeRawBufferPointer(start: r.pointee.base! + off, count: len))
            return 1
        }
        s.setFunction(-1, "write") { s in
            let r = try open(s)
            guard s.type(at: 3) == .string, let b = s.toBytes(3) else {
                throw LuaArgumentError(3, "string expected, got \(s.typeName(at: 3))")
            }
            guard !s.isNoneOrNil(2) else { throw LuaArgumentError(2, "offset expected") }
            let (off, len) = try range(s, r.pointee, 2, length: b.count, what: "write")
            if len > 0 { memcpy(r.pointee.base! + off, b.baseAddress!, len) }
            return 0
        }
        s.setFunction(-1, "close") { s in close(try check(s)); return 0 }
        s.setFunction(-1, "unlink") { s in
            _ = try check(s)
            let n = name(s, 1)
            let e = ShmSegment.unlink(n)
            ShmTracker.untrack(n)
            if e != 0 {
                throw LuaRaise("mp.SharedMemory: cannot unlink '\(n)': \(e == ENOENT ? "no such segment (already unlinked?)" : String(cString: strerror(e)))")
            }
            return 0
        }
        s.pushFunction(name: "__index", upvalues: 1) { s in
            let r = try check(s)
            if s.isKey(2, "name") { s.push(name(s, 1)); return 1 }
            if s.isKey(2, "size") { s.push(r.pointee.size); return 1 }
            if s.isKey(2, "closed") { s.push(r.pointee.closed); return 1 }
            return s.pushMethod(fromUpvalue: 2, key: 2)
        }
        s.rawSet(mt, field: "__index")
        s.setFunction(mt, "__tostring") { s in
            let r = try check(s)
            s.push("<SharedMemory name='\(name(s, 1))' size=\(r.pointee.size)\(r.pointee.closed ? " closed" : "")>")
            return 1
        }
        s.setFunction(mt, "__close") { s in close(try check(s)); return 0 }
        s.setFunction(mt, "__gc") { s in
            if let r = toRef(s, 1) { close(r) }
            return 0
        }
        s.setFunction(mt, "__eq") { s in
            guard toRef(s, 1) != nil, toRef(s, 2) != nil else { s.push(false); return 1 }
            s.push(name(s, 1) == name(s, 2))
            return 1
        }
    }

    /// `mp.SharedMemory{name =, size =, create = false, track = true}` or `mp.SharedMemory(name)`.
    static func construct(_ s: LuaStack) throws -> Int32 {
        var name: String? = nil
        var size = 0
        var create = false
        var track = true
        if s.type(at: 1) == .string {
            name = s.toString(1)
        } else if s.type(at: 1) == .table {
            func field(_ f: String) -> LuaType { s.rawGet(1, field: f) }
            let nt = field("name")
            if nt == .string { name = s.toString(-1) } else if nt != .nil { throw LuaArgumentError(1, "'name' must be a string") }
            s.pop()
            let st = field("size")
            if st != .nil {
                guard let v = s.toInteger(-1), s.type(at: -1) == .number else { throw LuaArgumentError(1, "'size' must be an integer") }
                size = Int(v)
            }
            s.pop()
            if field("create") != .nil { create = s.toBool(-1) }
            s.pop()
            if field("track") != .nil { track = s.toBool(-1) }
            s.pop()
        } else {
            throw LuaArgumentError(1, "table or name expected, got \(s.typeName(at: 1))")
        }
        if create {
            guard size > 0 else { throw LuaArgumentError(1, "'size' must be a positive integer when creating a segment") }
        } else if name == nil {
            throw LuaArgumentError(1, "'name' is required unless create = true")
        }
        let n = try name.map(ShmSegment.normalize) ?? ShmSegment.randomName()
        // Recorded before it exists, so a kill between shm_open and the record cannot leak it.
        let tracked = create && track && ShmTracker.track(n)
        let base: UnsafeMutableRawPointer?, len: Int
        do { (base, len) = try ShmSegment.open(n, create: create, size: size) } catch {
            if tracked { ShmTracker.untrack(n) }
            throw error
        }
        push(s, name: n, base: base, size: len)
        return 1
    }

    // MARK: handles: a segment travels by name; the receiver attaches (untracked).

    static func encode(_ s: LuaStack, _ i: Int32) throws -> [UInt8] {
        _ = try open(s, i)
        return Array(name(s, i).utf8)
    }

    static func decode(_ s: LuaStack, _ b: UnsafeRawBufferPointer) throws {
        let n = String(decoding: b, as: UTF8.self)
        do {
            let (base, len) = try ShmSegment.open(try ShmSegment.normalize(n), create: false, size: 0)
            push(s, name: n, base: base, size: len)
        } catch let e as LuaRaise {
            throw MPError("DecodeError", "\(e)")
        }
    }
}

extension MPModule {
    /// `mp.SharedMemory`; typed views come through `mp.Array(typecode, shm …)`.
    static func installSharedMemory(_ s: LuaStack, _ t: Int32) {
        _ = shmKindRegistered
        ShmTracker.installRoot()
        s.setFunction(t, "SharedMemory") { s in try SharedMemoryKind.construct(s) }
    }
}

private let shmKindRegistered: Void = {
    Handles.register(HandleKind(name: "SharedMemory", encode: SharedMemoryKind.encode, decode: SharedMemoryKind.decode))
    Handles.register(HandleKind(name: "ShmArray", encode: ShmArrayKind.encode, decode: ShmArrayKind.decode))
}()
