// LuaValue: a Lua value as a Swift value (tables by snapshot, functions and others by reference).

/// A Lua value in Swift.
///
/// Scalars and strings are copied; a table is copied into a `LuaTable` snapshot; functions,
/// userdata and threads are held by reference (`LuaReference`) and stay alive while referenced.
/// Lua strings that are valid UTF-8 become `.string`; other byte strings become `.bytes`.
public enum LuaValue: Hashable, CustomStringConvertible {
    case `nil`
    case boolean(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    /// A Lua string that is not valid UTF-8 (Lua strings are binary-safe).
    case bytes([UInt8])
    case table(LuaTable)
    case function(LuaReference)
    /// A userdata, light userdata or thread.
    case opaque(LuaReference)

    public var description: String {
        switch self {
        case .nil: return "nil"
        case .boolean(let b): return String(b)
        case .integer(let i): return String(i)
        case .number(let d): return String(d)
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .table(let t): return t.description
        case .function(let r): return "function: \(r.id)"
        case .opaque(let r): return "\(r.typeName): \(r.id)"
        }
    }

    /// The Lua type name (`type(v)` in Lua).
    public var typeName: String {
        switch self {
        case .nil: return "nil"
        case .boolean: return "boolean"
        case .integer, .number: return "number"
        case .string, .bytes: return "string"
        case .table: return "table"
        case .function: return "function"
        case .opaque(let r): return r.typeName
        }
    }

    /// `false` for nil and false, as in Lua.
    public var isTruthy: Bool {
        switch self {
        case .nil, .boolean(false): return false
        default: return true
        }
    }
}

extension LuaValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral {
    public init(nilLiteral: ()) { self = .nil }
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: LuaValue...) { self = .table(LuaTable(array: elements)) }
    public init(dictionaryLiteral elements: (LuaValue, LuaValue)...) {
        var t = LuaTable()
        for (k, v) in elements { t[k] = v }
        self = .table(t)
    }
}

/// A snapshot of a Lua table: its keys and values (nil values are absent, as in Lua).
public struct LuaTable: Hashable, CustomStringConvertible {
    /// Every key and its value (integral float keys are stored as integers, as Lua does).
    public private(set) var entries: [LuaValue: LuaValue] = [:]

    /// An empty table.
    public init() {}
    /// An empty table with room for `n` entries (filling it then never reallocates).
    init(minimumCapacity n: Int) { entries = Dictionary(minimumCapacity: n) }
    /// A sequence `{a, b, c}` (nils leave holes).
    public init(array: [LuaValue]) {
        for (i, v) in array.enumerated() where v != .nil { entries[.integer(Int64(i + 1))] = v }
    }

    /// `t[key]`; assigning `.nil` removes the key.
    public subscript(key: LuaValue) -> LuaValue {
        get { entries[Self.normalize(key)] ?? .nil }
        set {
            let k = Self.normalize(key)
            if newValue == .nil { entries[k] = nil } else { entries[k] = newValue }
        }
    }
    /// `t.key` for a string key.
    public subscript(key: String) -> LuaValue {
        get { self[.string(key)] }
        set { self[.string(key)] = newValue }
    }
    /// `t[index]` for an integer key.
    public subscript(index: Int) -> LuaValue {
        get { self[.integer(Int64(index))] }
        set { self[.integer(Int64(index))] = newValue }
    }

    /// The border `#t`: values at 1...n, where n is the last index before the first nil.
    public var array: [LuaValue] {
        var out: [LuaValue] = []
        var i: Int64 = 1
        while let v = entries[.integer(i)] { out.append(v); i += 1 }
        return out
    }

    /// The number of keys.
    public var count: Int { entries.count }

    /// Floats with an integral value are integer keys in Lua.
    static func normalize(_ k: LuaValue) -> LuaValue {
        if case .number(let d) = k, let i = Int64(exactly: d) { return .integer(i) }
        return k
    }

    public var description: String {
        let seq = array
        var parts = seq.map { $0.description }
        for (k, v) in entries {
            if case .integer(let i) = k, i >= 1, i <= Int64(seq.count) { continue }
            parts.append("[\(k)]=\(v)")
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }
}
