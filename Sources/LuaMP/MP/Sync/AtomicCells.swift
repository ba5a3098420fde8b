// AtomicCells: lock-free read-modify-write of integer Value/Array cells (add, exchange, compare_exchange).
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Atomic operations on one integer cell of typecode `type` at `p`. Each is a single hardware
/// atomic (`lock xadd` for 64-bit signed `add`, a compare-and-swap loop otherwise), so it needs
/// no lock and a process killed anywhere leaves the cell either before or after the operation.
///
/// 64-bit signed cells (`q`, `l`, `"int"`) wrap around like Lua integers; every other type
/// refuses a result outside its range (the cell is left unchanged).
struct AtomicCell {
    let type: TypeCode
    let p: UnsafeMutableRawPointer

    /// The raw bits of the cell.
    private func load() -> UInt64 {
        switch type.size {
        case 1: return UInt64(luamp_cell_load8(p.assumingMemoryBound(to: UInt8.self)))
        case 2: return UInt64(luamp_cell_load16(p.assumingMemoryBound(to: UInt16.self)))
        case 4: return UInt64(luamp_cell_load32(p.assumingMemoryBound(to: UInt32.self)))
        default: return luamp_cell_load64(p.assumingMemoryBound(to: UInt64.self))
        }
    }

    private func cas(_ old: UInt64, _ new: UInt64) -> Bool {
        switch type.size {
        case 1: return luamp_atomic_cas8(p.assumingMemoryBound(to: UInt8.self), UInt8(truncatingIfNeeded: old), UInt8(truncatingIfNeeded: new)) != 0
        case 2: return luamp_atomic_cas16(p.assumingMemoryBound(to: UInt16.self), UInt16(truncatingIfNeeded: old), UInt16(truncatingIfNeeded: new)) != 0
        case 4: return luamp_atomic_cas32(p.assumingMemoryBound(to: UInt32.self), UInt32(truncatingIfNeeded: old), UInt32(truncatingIfNeeded: new)) != 0
        default: return luamp_atomic_cas64(p.assumingMemoryBound(to: UInt64.self), old, new) != 0
        }
    }

    /// Bits → the Lua integer they hold for this type.
    private func value(_ bits: UInt64) -> Int64 {
        switch type {
        case .int8: return Int64(Int8(truncatingIfNeeded: bits))
        case .int16: return Int64(Int16(truncatingIfNeeded: bits))
        case .int32: return Int64(Int32(truncatingIfNeeded: bits))
        default: return Int64(bitPattern: bits)
        }
    }

    private var wraps: Bool { type == .int64 || type == .long }

    private func check(_ v: Int64, _ what: String) throws {
        guard type.range.contains(v) else {
            throw LuaRaise("\(what): \(v) out of range for typecode '\(type.letter)' (\(type.range.lowerBound)..\(type.range.upperBound))")
        }
    }

    /// `cell += n`; returns the new value.
    func add(_ n: Int64, what: String) throws -> Int64 {
        if wraps {
            return Int64(bitPattern: luamp_atomic_fetch_add64(p.assumingMemoryBound(to: UInt64.self), UInt64(bitPattern: n)))
        }
        while true {
            let bits = load()
            let old = value(bits)
            let (new, overflow) = old.addingReportingOverflow(n)
            if overflow { throw LuaRaise("\(what): integer overflow") }
            try check(new, what)
            if cas(bits, UInt64(bitPattern: new)) { return new }
        }
    }

    /// Stores `x`; returns the previous value.
    func exchange(_ x: Int64, what: String) throws -> Int64 {
        try check(x, what)
        while true {
            let bits = load()
            if cas(bits, UInt64(bitPattern: x)) { return value(bits) }
        }
    }

    /// Stores `new` if the cell holds `expected`. Returns whether it did and the value the cell
    /// held (equal to `expected` on success).
    func compareExchange(_ expected: Int64, _ new: Int64, what: String) throws -> (Bool, Int64) {
        try check(new, what)
        while true {
            let bits = load()
            let cur = value(bits)
            if cur != expected { return (false, cur) }
            if cas(bits, UInt64(bitPattern: new)) { return (true, cur) }
        }
    }
}

extension SharedValueKinds {
    /// The cell of the Value (slot 1) or element `a[i]` (slot 2, 1-based) for an atomic method,
    /// checking the typecode is an integer one. The index is read from `indexSlot` for Arrays.
    static func atomicCell(_ s: LuaStack, _ method: String, array isArray: Bool) throws -> AtomicCell {
        let a = try Arena.require()
        let r = isArray ? try arrayTag.ref(s, 1) : try valueTag.ref(s, 1)
        let c = SharedCells(a, r.pointee.offset)
        guard !c.type.isFloat else {
            throw LuaRaise("mp.\(isArray ? "Array" : "Value"):\(method) needs an integer typecode (this one is '\(c.type.letter)')")
        }
        guard isArray else { return AtomicCell(type: c.type, p: c.cell()) }
        guard let i = s.toInteger(2), s.type(at: 2) == .number else {
            throw LuaArgumentError(2, "integer index expected, got \(s.typeName(at: 2))")
        }
        guard i >= 1, i <= Int64(c.count) else { throw LuaArgumentError(2, "index \(i) out of range (1..\(c.count))") }
        return AtomicCell(type: c.type, p: c.cell(Int(i - 1)))
    }

    /// `v:add([n = 1])` / `a:add(i [, n = 1])`: adds atomically, returns the new value.
    static func add(_ s: LuaStack, array: Bool) throws -> Int32 {
        let c = try atomicCell(s, "add", array: array)
        let at: Int32 = array ? 3 : 2
        let n = s.isNoneOrNil(at) ? 1 : try s.checkInteger(at)
        s.push(try c.add(n, what: array ? "mp.Array:add" : "mp.Value:add"))
        return 1
    }

    /// Value methods: `add`, `exchange`, `compare_exchange`.
    static let valueAtomics: [(String, FastFunction)] = [
        ("add", { L, a in runFast(L, a) { s in try SharedValueKinds.add(s, array: false) } }),
        ("exchange", { L, a in runFast(L, a) { s in
            let c = try SharedValueKinds.atomicCell(s, "exchange", array: false)
            s.push(try c.exchange(try s.checkInteger(2), what: "mp.Value:exchange"))
            return 1
        } }),
        ("compare_exchange", { L, a in runFast(L, a) { s in
            let c = try SharedValueKinds.atomicCell(s, "compare_exchange", array: false)
            let (ok, cur) = try c.compareExchange(try s.checkInteger(2), try s.checkInteger(3), what: "mp.Value:compare_exchange")
            s.push(ok); s.push(cur)
            return 2
        } }),
    ]

    /// Array method `add(i [, n = 1])`.
    static let arrayAtomics: [(String, FastFunction)] = [
        ("add", { L, a in runFast(L, a) { s in try SharedValueKinds.add(s, array: true) } }),
    ]
}
