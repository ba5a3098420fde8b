// ShmArrayKind: mp.Array(typecode, shm [, offset [, length]]) — typed views over a SharedMemory segment.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// A view userdata: the segment's `ShmRef` (kept alive through user value 1, the SharedMemory
/// userdata), the byte offset, the element count and the typecode. Each access checks the
/// segment is still open and is one atomic load or store, like `mp.Array` cells; `add` is atomic.
struct ShmViewRef {
    var shm: UnsafeMutablePointer<ShmRef>
    var offset: Int
    var count: Int
    var type: TypeCode
}

enum ShmArrayKind {
    static let metatable = "mp.ShmArray"

    static func check(_ s: LuaStack, _ i: Int32 = 1) throws -> ShmViewRef {
        guard let p = luaL_testudata(s.L, i, metatable) else {
            throw LuaArgumentError(i, "mp.Array (shared memory view) expected, got \(s.typeName(at: i))")
        }
        return p.assumingMemoryBound(to: ShmViewRef.self).pointee
    }

    /// The element pointer for the 1-based index at `i`.
    /// - Throws: `LuaRaise` for a closed segment, a non-integer or an index outside 1…#a.
    static func cell(_ s: LuaStack, _ v: ShmViewRef, _ i: Int32) throws -> UnsafeMutableRawPointer {
        guard !v.shm.pointee.closed, let base = v.shm.pointee.base else {
            throw LuaRaise("mp.Array: its SharedMemory '\(segmentName(s))' is closed")
        }
        guard let k = s.toInteger(i), s.type(at: i) == .number else {
            throw LuaRaise("mp.Array index must be an integer, got \(s.describe(i))")
        }
        guard k >= 1, k <= Int64(v.count) else { throw LuaRaise("mp.Array index \(k) out of range (1..\(v.count))") }
        return base + v.offset + Int(k - 1) * v.type.size
    }

    private static func segmentName(_ s: LuaStack) -> String {
        lua_getiuservalue(s.L, 1, 1)
        defer { s.pop() }
        return SharedMemoryKind.name(s, -1)
    }

    /// `mp.Array(typecode, shm [, offset = 0 [, length]])`: argument 2 is the SharedMemory.
    static func construct(_ s: LuaStack) throws -> Int32 {
        s.top = 4
        let type = try s.typeCodeArgument(1)
        let r = try SharedMemoryKind.open(s, 2)
        let off = s.isNoneOrNil(3) ? 0 : Int(try s.checkInteger(3))
        guard off >= 0, off <= r.pointee.size else { throw LuaArgumentError(3, "offset \(off) outside the segment (0..\(r.pointee.size))") }
        guard off % type.size == 0 else { throw LuaArgumentError(3, "offset \(off) is not a multiple of the element size (\(type.size))") }
        let room = (r.pointee.size - off) / type.size
        let n = s.isNoneOrNil(4) ? room : Int(try s.checkInteger(4))
        guard n >= 0, n <= room else {
            throw LuaArgumentError(4, "\(n) elements of \(type.size) bytes at offset \(off) do not fit in \(r.pointee.size) bytes")
        }
        push(s, shmAt: 2, r, offset: off, count: n, type: type)
        return 1
    }

    /// Pushes a view of the SharedMemory at `shm` (its ref `r`). Stack: [-0, +1].
    private static func push(_ s: LuaStack, shmAt shm: Int32, _ r: UnsafeMutablePointer<ShmRef>, offset: Int, count: Int, type: TypeCode) {
        let shm = s.absIndex(shm)
        let p = luamp_newuserdata(s.L, MemoryLayout<ShmViewRef>.size)!
        p.initializeMemory(as: ShmViewRef.self, repeating: ShmViewRef(shm: r, offset: offset, count: count, type: type), count: 1)
        s.pushValue(shm)
        lua_setiuservalue(s.L, -2, 1)
        pushMetatable(s)
        lua_setmetatable(s.L, -2)
    }

    // MARK: handles: typecode, offset, count, then the segment's name; the receiver attaches.

    static func encode(_ s: LuaStack, _ i: Int32) throws -> [UInt8] {
        let v = try check(s, i)
        guard !v.shm.pointee.closed else { throw LuaRaise("mp.Array: its SharedMemory is closed") }
        var out: [UInt8] = [v.type.rawValue]
        withUnsafeBytes(of: UInt64(v.offset).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(v.count).littleEndian) { out.append(contentsOf: $0) }
        lua_getiuservalue(s.L, i, 1)
        defer { s.pop() }
        out.append(contentsOf: SharedMemoryKind.name(s, -1).utf8)
        return out
    }

    static func decode(_ s: LuaStack, _ b: UnsafeRawBufferPointer) throws {
        guard b.count > 17, let type = TypeCode(rawValue: b[0]) else { throw MPError("DecodeError", "bad mp.Array view handle") }
        let off = Int(UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 1, as: UInt64.self)))
        let n = Int(UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 9, as: UInt64.self)))
        try SharedMemoryKind.decode(s, UnsafeRawBufferPointer(rebasing: b[17...]))
        guard let r = SharedMemoryKind.toRef(s, -1), off >= 0, off % type.size == 0, n >= 0,
              off <= r.pointee.size, n <= (r.pointee.size - off) / type.size else {
            s.pop()
            throw MPError("DecodeError", "mp.Array view does not fit its SharedMemory any more")
        }
        push(s, shmAt: -1, r, offset: off, count: n, type: type)
        s.remove(-2)
    }

    static func pushMetatable(_ s: LuaStack) {
        guard luaL_newmetatable(s.L, metatable) != 0 else { return }
        let mt = s.top
        s.push("ShmArray"); s.rawSet(mt, field: "__mpkind")
        s.push("mp.Array"); s.rawSet(mt, field: "__name")
        s.newTable(hashCount: 2)
        s.setFunction(-1, "totable") { s in
            let v = try check(s)
            s.newTable(arrayCount: Int32(min(v.count, 1 << 24)))
            for i in 0..<v.count {
                s.push(Int64(i + 1))
                let p = try cell(s, v, s.top)
                s.pop()
                v.type.push(s, from: p)
                s.rawSet(-2, index: Int64(i + 1))
            }
            return 1
        }
        s.setFunction(-1, "add") { s in
            let v = try check(s)
            guard !v.type.isFloat else { throw LuaRaise("mp.Array:add needs an integer typecode (this one is '\(v.type.letter)')") }
            let p = try cell(s, v, 2)
            let n = s.isNoneOrNil(3) ? 1 : try s.checkInteger(3)
            s.push(try AtomicCell(type: v.type, p: p).add(n, what: "mp.Array:add"))
            return 1
        }
        s.pushFunction(name: "__index", upvalues: 1) { s in
            let v = try check(s)
            if s.type(at: 2) == .number { v.type.push(s, from: try cell(s, v, 2)); return 1 }
            if s.isKey(2, "typecode") { s.push(v.type.letter); return 1 }
            return s.pushMethod(fromUpvalue: 2, key: 2)
        }
        s.rawSet(mt, field: "__index")
        s.setFunction(mt, "__newindex") { s in
            let v = try check(s)
            guard s.type(at: 2) == .number else { throw LuaRaise("cannot set field '\(s.describe(2))' of mp.Array (use integer indices)") }
            let p = try cell(s, v, 2)
            try v.type.store(s, 3, to: p, what: "mp.Array[\(s.describe(2))]")
            return 0
        }
        s.setFunction(mt, "__len") { s in s.push(try check(s).count); return 1 }
        s.setFunction(mt, "__tostring") { s in
            let v = try check(s)
            s.push("<Array '\(v.type.letter)' len=\(v.count) shm='\(segmentName(s))'>")
            return 1
        }
    }
}
