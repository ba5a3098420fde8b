// TypeCode: Python's array/ctypes typecodes for mp.Value and mp.Array — sizes, ranges, atomic cell access.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A C scalar type named by Python's typecode (`'b' 'B' 'h' 'H' 'i' 'I' 'l' 'L' 'q' 'Q' 'f' 'd'`,
/// plus `"int"` = `'q'` and `"double"` = `'d'`), with its C size on Linux x86-64/arm64.
/// Every cell read or write is one atomic access (acquire load / release store), so a reader
/// never sees a torn value.
enum TypeCode: UInt8 {
    // The raw value is the letter's ASCII code.
    case int8 = 98, uint8 = 66            // 'b', 'B'
    case int16 = 104, uint16 = 72         // 'h', 'H'
    case int32 = 105, uint32 = 73         // 'i', 'I'
    case long = 108, ulong = 76           // 'l', 'L'
    case int64 = 113, uint64 = 81         // 'q', 'Q'
    case float = 102, double = 100        // 'f', 'd'

    /// Parses a typecode string. Returns nil for anything else.
    init?(name: String) {
        switch name {
        case "int": self = .int64
        case "double": self = .double
        default:
            guard name.utf8.count == 1, let c = TypeCode(rawValue: name.utf8.first!) else { return nil }
            self = c
        }
    }

    /// The typecode letter, e.g. "q".
    var letter: String { String(UnicodeScalar(rawValue)) }

    var size: Int {
        switch self {
        case .int8, .uint8: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float: return 4
        case .long, .ulong, .int64, .uint64, .double: return 8
        }
    }

    var isFloat: Bool { self == .float || self == .double }

    /// The integer range (unsigned 64-bit types stop at Lua's largest integer).
    var range: ClosedRange<Int64> {
        switch self {
        case .int8: return Int64(Int8.min)...Int64(Int8.max)
        case .uint8: return 0...Int64(UInt8.max)
        case .int16: return Int64(Int16.min)...Int64(Int16.max)
        case .uint16: return 0...Int64(UInt16.max)
        case .int32: return Int64(Int32.min)...Int64(Int32.max)
        case .uint32: return 0...Int64(UInt32.max)
        case .long, .int64: return Int64.min...Int64.max
        case .ulong, .uint64: return 0...Int64.max
        case .float, .double: return Int64.min...Int64.max
        }
    }

    /// Reads the cell at `p` and pushes it (integer or float). Stack: [-0, +1].
    func push(_ s: LuaStack, from p: UnsafeMutableRawPointer) {
        switch self {
        case .int8: s.push(Int64(Int8(bitPattern: luamp_cell_load8(p.assumingMemoryBound(to: UInt8.self)))))
        case .uint8: s.push(Int64(luamp_cell_load8(p.assumingMemoryBound(to: UInt8.self))))
        case .int16: s.push(Int64(Int16(bitPattern: luamp_cell_load16(p.assumingMemoryBound(to: UInt16.self)))))
        case .uint16: s.push(Int64(luamp_cell_load16(p.assumingMemoryBound(to: UInt16.self))))
        case .int32: s.push(Int64(Int32(bitPattern: luamp_cell_load32(p.assumingMemoryBound(to: UInt32.self)))))
        case .uint32: s.push(Int64(luamp_cell_load32(p.assumingMemoryBound(to: UInt32.self))))
        case .long, .ulong, .int64, .uint64:
            s.push(Int64(bitPattern: luamp_cell_load64(p.assumingMemoryBound(to: UInt64.self))))
        case .float: s.push(Double(Float(bitPattern: luamp_cell_load32(p.assumingMemoryBound(to: UInt32.self)))))
        case .double: s.push(Double(bitPattern: luamp_cell_load64(p.assumingMemoryBound(to: UInt64.self))))
        }
    }

    /// Checks the Lua value at `i` and writes it to the cell at `p`.
    /// - Throws: `LuaRaise` naming `what` when the value is not a number, not an integer for an
    ///   integer type, or out of the type's range.
    func store(_ s: LuaStack, _ i: Int32, to p: UnsafeMutableRawPointer, what: @autoclosure () -> String) throws {
        if size == 8 && !isFloat && s.isInteger(i), let v = s.toInteger(i), v >= 0 || range.lowerBound < 0 {
            luamp_cell_store64(p.assumingMemoryBound(to: UInt64.self), UInt64(bitPattern: v))   // fast path
            return
        }
        let what = what()
        guard s.type(at: i) == .number else {
            throw LuaRaise("\(what): number expected, got \(s.typeName(at: i))")
        }
        if isFloat {
            let d = s.toNumber(i)!
            if self == .float {
                luamp_cell_store32(p.assumingMemoryBound(to: UInt32.self), Float(d).bitPattern)
            } else {
                luamp_cell_store64(p.assumingMemoryBound(to: UInt64.self), d.bitPattern)
            }
            return
        }
        guard let v = s.toInteger(i) else {
            throw LuaRaise("\(what): number has no integer representation")
        }
        guard range.contains(v) else {
            throw LuaRaise("\(what): \(v) out of range for typecode '\(letter)' (\(range.lowerBound)..\(range.upperBound))")
        }
        switch size {
        case 1: luamp_cell_store8(p.assumingMemoryBound(to: UInt8.self), UInt8(truncatingIfNeeded: v))
        case 2: luamp_cell_store16(p.assumingMemoryBound(to: UInt16.self), UInt16(truncatingIfNeeded: v))
        case 4: luamp_cell_store32(p.assumingMemoryBound(to: UInt32.self), UInt32(truncatingIfNeeded: v))
        default: luamp_cell_store64(p.assumingMemoryBound(to: UInt64.self), UInt64(bitPattern: v))
        }
    }
}

extension LuaStack {
    /// Argument `i` as a typecode. - Throws: `LuaArgumentError` listing the valid codes.
    func typeCodeArgument(_ i: Int32) throws -> TypeCode {
        let name = try checkString(i)
        guard let t = TypeCode(name: name) else {
            throw LuaArgumentError(i, "bad typecode '\(name)' (expected one of b B h H i I l L q Q f d, \"int\", \"double\")")
        }
        return t
    }
}
