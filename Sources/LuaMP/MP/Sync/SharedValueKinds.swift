// mp.Value and mp.Array: typed cells in the arena with an optional lock of their own.
internal import LuaMPShims

/// Layout shared by Value and Array (the offsets C reads are in luamp_layouts.h): `+0` UInt32
/// magic, `+4` UInt8 typecode, `+5` UInt8 "owns its lock", `+8` UInt64 lock offset (0 = none),
/// `+16` UInt64 element count (1 for a Value), cells from `+24`.
///
/// Each access of `v.value` / `a[i]` is a single atomic load or store, so no lock is taken for
/// it (Python takes the lock for each access; the effect is the same: no torn values). A
/// read-modify-write such as `v.value = v.value + 1` still needs `v:get_lock()` or another lock.
struct SharedCells {
    static let valueMagic = UInt32(LUAMP_MAGIC_VALUE)
    static let arrayMagic = UInt32(LUAMP_MAGIC_ARRAY)

    let base: UnsafeMutableRawPointer
    init(_ arena: Arena, _ offset: UInt64) { base = arena.pointer(offset) }

    var type: TypeCode { TypeCode(rawValue: base.load(fromByteOffset: Int(LUAMP_CELLS_TYPE_OFFSET), as: UInt8.self)) ?? .int64 }
    var ownsLock: Bool { base.load(fromByteOffset: Int(LUAMP_CELLS_TYPE_OFFSET) + 1, as: UInt8.self) != 0 }
    var lockOffset: UInt64 { base.load(fromByteOffset: Int(LUAMP_CELLS_LOCK_OFFSET), as: UInt64.self) }
    var count: Int { Int(base.load(fromByteOffset: Int(LUAMP_CELLS_COUNT_OFFSET), as: UInt64.self)) }
    var isArray: Bool { base.load(as: UInt32.self) == SharedCells.arrayMagic }
    /// The cell of a Value, or element `i` (0-based) of an Array.
    func cell(_ i: Int = 0) -> UnsafeMutableRawPointer { base + Int(LUAMP_CELLS_DATA_OFFSET) + i * type.size }

    /// Allocates a Value (count nil) or an Array of `count` zeroed cells.
    static func create(_ type: TypeCode, count: Int?, lockOffset: UInt64, ownsLock: Bool) throws -> UInt64 {
        let a = try Arena.require()
        let bytes = Int(LUAMP_CELLS_DATA_OFFSET) + (count ?? 1) * type.size
        let off = try a.allocate(bytes, zeroed: true)
        let p = a.pointer(off)
        p.storeBytes(of: type.rawValue, toByteOffset: Int(LUAMP_CELLS_TYPE_OFFSET), as: UInt8.self)
        p.storeBytes(of: UInt8(ownsLock ? 1 : 0), toByteOffset: Int(LUAMP_CELLS_TYPE_OFFSET) + 1, as: UInt8.self)
        p.storeBytes(of: lockOffset, toByteOffset: Int(LUAMP_CELLS_LOCK_OFFSET), as: UInt64.self)
        p.storeBytes(of: UInt64(count ?? 1), toByteOffset: Int(LUAMP_CELLS_COUNT_OFFSET), as: UInt64.self)
        luamp_atomic_store32(p.assumingMemoryBound(to: UInt32.self), count == nil ? valueMagic : arrayMagic)
        return off
    }

    static func release(_ a: Arena, _ off: UInt64) {
        let c = SharedCells(a, off)
        if c.ownsLock && c.lockOffset != 0 { a.free(c.lockOffset) }
        a.free(off)
    }
}

enum SharedValueKinds {
    /// `get_lock` for both kinds: the lock as an mp.RLock/mp.Lock object. The Value is then
    /// never freed by collection (the returned lock lives in its memory's lifetime).
    static let getLock: KindMethod = { s in
        guard let r = SharedKinds.toRef(s, 1, value) ?? SharedKinds.toRef(s, 1, array) else {
            throw LuaArgumentError(1, "mp.Value or mp.Array expected, got \(s.typeName(at: 1))")
        }
        let c = SharedCells(try Arena.require(), r.pointee.offset)
        guard c.lockOffset != 0 else { throw LuaRaise("this shared object was created with lock = false") }
        try Arena.require().pin(r.pointee.offset)   // the lock handed out lives as long as this memory
        try LockKinds.pushExisting(s, offset: c.lockOffset)
        return 1
    }

    /// `typecode`, a nil `get_lock` when there is no lock, else the method: the fields Value
    /// and Array share (key at 2). Stack: [-0, +1].
    static func pushField(_ s: LuaStack, _ c: SharedCells) -> Int32 {
        if s.isKey(2, "typecode") { s.push(c.type.letter); return 1 }
        if s.isKey(2, "get_lock") && c.lockOffset == 0 { s.pushNil(); return 1 }
        SharedKinds.pushMethod(s)
        return 1
    }

    static let valueTag = KindTag("mp.Value", magic: SharedCells.valueMagic)
    static let arrayTag = KindTag("mp.Array", magic: SharedCells.arrayMagic)

    static let value: SharedKind = {
        var k = SharedKind.Hooks()
        k.release = SharedCells.release
        k.methods = [("get_lock", getLock)]
        k.fastMethods = valueAtomics
        // `<Value 'i' 42>`: the cell is one atomic load, as for `v.value`.
        k.describe = { s, a, r in
            let c = SharedCells(a, r.offset)
            c.type.push(s, from: c.cell())
            defer { s.pop() }
            return "<Value '\(c.type.letter)' \(s.describe(-1))>"
        }
        k.cFast = ["__index": Int32(LUAMP_FAST_VALUE_INDEX), "__newindex": Int32(LUAMP_FAST_VALUE_NEWINDEX),
                   "add": Int32(LUAMP_FAST_VALUE_ADD)]
        k.fastIndex = { L, a in runFast(L, a) { s in
            let c = SharedCells(try Arena.require(), try SharedValueKinds.valueTag.ref(s, 1).pointee.offset)
            if s.isKey(2, "value") { c.type.push(s, from: c.cell()); return 1 }
            return SharedValueKinds.pushField(s, c)
        } }
        k.fastNewIndex = { L, a in runFast(L, a) { s in
            let c = SharedCells(try Arena.require(), try SharedValueKinds.valueTag.ref(s, 1).pointee.offset)
            guard s.isKey(2, "value") else {
                throw LuaRaise("cannot set field '\(s.describe(2))' of mp.Value (only 'value')")
            }
            try c.type.store(s, 3, to: c.cell(), what: "mp.Value")
            return 0
        } }
        return SharedKind(name: "Value", magic: SharedCells.valueMagic, bytes: 25, k)
    }()

    static let array: SharedKind = {
        var k = SharedKind.Hooks()
        k.release = SharedCells.release
        k.cFast = ["__index": Int32(LUAMP_FAST_ARRAY_INDEX), "__newindex": Int32(LUAMP_FAST_ARRAY_NEWINDEX)]
        k.fastMethods = arrayAtomics
        k.describe = { _, a, r in
            let c = SharedCells(a, r.offset)
            return "<Array '\(c.type.letter)' len=\(c.count)>"
        }
        k.methods = [
            ("get_lock", getLock),
            ("totable", { s in
                let c = SharedCells(try Arena.require(), try SharedKinds.check(s, 1, array).offset)
                let n = c.count
                s.newTable(arrayCount: Int32(min(n, 1 << 24)))
                for i in 0..<n {
                    c.type.push(s, from: c.cell(i))
                    s.rawSet(-2, index: Int64(i + 1))
                }
                return 1
            }),
        ]
        k.fastIndex = { L, a in runFast(L, a) { s in
            let c = SharedCells(try Arena.require(), try SharedValueKinds.arrayTag.ref(s, 1).pointee.offset)
            if s.type(at: 2) == .number {
                c.type.push(s, from: c.cell(try SharedValueKinds.index(s, c)))
                return 1
            }
            return SharedValueKinds.pushField(s, c)
        } }
        k.fastNewIndex = { L, a in runFast(L, a) { s in
            let c = SharedCells(try Arena.require(), try SharedValueKinds.arrayTag.ref(s, 1).pointee.offset)
            guard s.type(at: 2) == .number else {
                throw LuaRaise("cannot set field '\(s.describe(2))' of mp.Array (use integer indices)")
            }
            let i = try SharedValueKinds.index(s, c)
            try c.type.store(s, 3, to: c.cell(i), what: "mp.Array[\(i + 1)]")
            return 0
        } }
        k.metamethods = [
            ("__len", { s in
                s.push(Int64(SharedCells(try Arena.require(), try SharedKinds.check(s, 1, array).offset).count))
                return 1
            }),
            // pairs(a) walks 1..#a (ipairs would stop with an index error at #a + 1).
            ("__pairs", { s in
                _ = try SharedKinds.check(s, 1, array)
                s.pushFunction(name: "next") { s in
                    let c = SharedCells(try Arena.require(), try SharedKinds.check(s, 1, array).offset)
                    let i = (s.toInteger(2) ?? 0) + 1
                    guard i >= 1, i <= Int64(c.count) else { s.pushNil(); return 1 }
                    s.push(i)
                    c.type.push(s, from: c.cell(Int(i - 1)))
                    return 2
                }
                s.pushValue(1)
                s.pushNil()
                return 3
            }),
        ]
        return SharedKind(name: "Array", magic: SharedCells.arrayMagic, bytes: 24, k)
    }()

    /// The 0-based cell for the 1-based index at stack slot 2.
    /// - Throws: `LuaRaise` for non-integers and indices outside 1…#a.
    static func index(_ s: LuaStack, _ c: SharedCells) throws -> Int {
        guard let i = s.toInteger(2) else { throw LuaRaise("mp.Array index must be an integer, got \(s.describe(2))") }
        guard i >= 1, i <= Int64(c.count) else { throw LuaRaise("mp.Array index \(i) out of range (1..\(c.count))") }
        return Int(i - 1)
    }

    /// Reads the `lock` option at `i` (true/nil: a new RLock; false: none; an mp.Lock/RLock: that one).
    /// - Returns: (lock offset or 0, whether the object owns it).
    static func lockOption(_ s: LuaStack, _ i: Int32) throws -> (UInt64, Bool) {
        var v = i
        if s.type(at: i) == .table {
            s.rawGet(i, field: "lock")
            v = s.top
        }
        defer { if v != i { s.pop() } }
        if s.isNoneOrNil(v) || (s.type(at: v) == .boolean && s.toBool(v)) {
            return (try SharedLock.create(recursive: true), true)
        }
        if s.type(at: v) == .boolean { return (0, false) }
        guard let l = LockKinds.anyLock(s, v) else {
            throw LuaArgumentError(i, "lock must be a boolean, mp.Lock or mp.RLock, got \(s.typeName(at: v))")
        }
        SharedKinds.markShared(s, v)
        return (l.offset, false)
    }

    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "Value") { s in
            s.top = 3                            // fixed argument slots; results go above
            let type = try s.typeCodeArgument(1)
            if !s.isNoneOrNil(2) && s.type(at: 2) != .number {
                throw LuaArgumentError(2, "number expected, got \(s.typeName(at: 2))")
            }
            let (lk, owns) = try lockOption(s, 3)
            let a = try Arena.require()
            let off: UInt64
            do { off = try SharedCells.create(type, count: nil, lockOffset: lk, ownsLock: owns) } catch {
                if owns { a.free(lk) }
                throw error
            }
            SharedKinds.push(s, value, offset: off, owned: true)
            if !s.isNoneOrNil(2) {
                do { try type.store(s, 2, to: SharedCells(a, off).cell(), what: "initial value") } catch {
                    throw LuaArgumentError(2, "\(error)")
                }
            }
            return 1
        }
        s.setFunction(t, "Array") { s in
            if SharedMemoryKind.toRef(s, 2) != nil { return try ShmArrayKind.construct(s) }   // a view over a SharedMemory
            s.top = 3
            let type = try s.typeCodeArgument(1)
            let n: Int64
            if s.type(at: 2) == .table {
                n = s.rawLength(2)
            } else if let k = s.toInteger(2), s.type(at: 2) == .number {
                guard k >= 0 else { throw LuaArgumentError(2, "size must be >= 0") }
                n = k
            } else {
                throw LuaArgumentError(2, "size or list expected, got \(s.typeName(at: 2))")
            }
            guard n <= Int64(1) << 36 / Int64(type.size) else { throw LuaArgumentError(2, "array too large") }
            let (lk, owns) = try lockOption(s, 3)
            let a = try Arena.require()
            let off: UInt64
            do { off = try SharedCells.create(type, count: Int(n), lockOffset: lk, ownsLock: owns) } catch {
                if owns { a.free(lk) }
                throw error
            }
            SharedKinds.push(s, array, offset: off, owned: true)
            if s.type(at: 2) == .table {
                let c = SharedCells(a, off)
                for i in 0..<Int(n) {
                    s.rawGet(2, index: Int64(i + 1))
                    do { try type.store(s, -1, to: c.cell(i), what: "element \(i + 1)") } catch {
                        throw LuaArgumentError(2, "\(error)")
                    }
                    s.pop()
                }
            }
            return 1
        }
    }
}
