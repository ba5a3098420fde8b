// LuaValue+Codable: a faithful Codable form of Lua values (integer vs float, binary strings, any table keys).

/// `LuaValue` encodes as a one-key object naming its case, so nothing is lost in a round trip:
///
/// | value | JSON (with `JSONEncoder`) |
/// |---|---|
/// | `.nil` | `{"nil":null}` |
/// | `.boolean(true)` | `{"boolean":true}` |
/// | `.integer(42)` | `{"integer":42}` (stays an integer) |
/// | `.number(1.5)` | `{"number":1.5}` (stays a float, even `2.0`) |
/// | `.string("hi")` | `{"string":"hi"}` |
/// | `.bytes([255, 0])` | `{"bytes":[255,0]}` (a Lua string that is not UTF-8) |
/// | `.table(…)` | `{"table":[[key, value], …]}` (pairs, so keys may be numbers, booleans or tables) |
///
/// Table pairs are written in a stable order (by key type, then key). Functions, userdata and
/// threads (`.function`, `.opaque`) live inside one Lua state and cannot be encoded: encoding
/// them throws `EncodingError.invalidValue`. NaN and infinities are the encoder's business
/// (`JSONEncoder` refuses them unless told how to write them).
extension LuaValue: Codable {
    private enum Case: String, CodingKey {
        case `nil`, boolean, integer, number, string, bytes, table
    }

    public func encode(to encoder: any Swift.Encoder) throws {
        var c = encoder.container(keyedBy: Case.self)
        switch self {
        case .nil: try c.encodeNil(forKey: .nil)
        case .boolean(let b): try c.encode(b, forKey: .boolean)
        case .integer(let i): try c.encode(i, forKey: .integer)
        case .number(let d): try c.encode(d, forKey: .number)
        case .string(let s): try c.encode(s, forKey: .string)
        case .bytes(let b): try c.encode(b, forKey: .bytes)
        case .table(let t):
            var pairs = c.nestedUnkeyedContainer(forKey: .table)
            for (k, v) in t.entries.sorted(by: { LuaValue.orderedBefore($0.key, $1.key) }) {
                var pair = pairs.nestedUnkeyedContainer()
                try pair.encode(k)
                try pair.encode(v)
            }
        case .function, .opaque:
            throw EncodingError.invalidValue(self, EncodingError.Context(
                codingPath: encoder.codingPath,
                debugDescription: "cannot encode a Lua \(typeName): only nil, booleans, numbers, strings and tables of them can be encoded"))
        }
    }

    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: Case.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(DecodingError.Context(
                codingPath: decoder.codingPath,
                debugDescription: "a Lua value is an object with exactly one of the keys nil, boolean, integer, number, string, bytes, table"))
        }
        switch key {
        case .nil: self = .nil
        case .boolean: self = .boolean(try c.decode(Bool.self, forKey: key))
        case .integer: self = .integer(try c.decode(Int64.self, forKey: key))
        case .number: self = .number(try c.decode(Double.self, forKey: key))
        case .string: self = .string(try c.decode(String.self, forKey: key))
        case .bytes:
            let b = try c.decode([UInt8].self, forKey: key)
            // Keep the invariant LuaValue readers rely on: valid UTF-8 is always `.string`.
            self = String(validating: b, as: UTF8.self).map { .string($0) } ?? .bytes(b)
        case .table:
            var pairs = try c.nestedUnkeyedContainer(forKey: key)
            var t = LuaTable()
            while !pairs.isAtEnd {
                var pair = try pairs.nestedUnkeyedContainer()
                let k = try pair.decode(LuaValue.self)
                let v = try pair.decode(LuaValue.self)
                if k == .nil || { if case .number(let d) = k { return d.isNaN }; return false }() {
                    throw DecodingError.dataCorruptedError(in: pair, debugDescription: "a Lua table key cannot be nil or NaN")
                }
                t[k] = v
            }
            self = .table(t)
        }
    }

    /// A total order used to write table pairs deterministically: by type, then by value.
    static func orderedBefore(_ a: LuaValue, _ b: LuaValue) -> Bool {
        func rank(_ v: LuaValue) -> Int {
            switch v {
            case .nil: return 0
            case .boolean: return 1
            case .integer, .number: return 2
            case .string, .bytes: return 3
            case .table: return 4
            case .function: return 5
            case .opaque: return 6
            }
        }
        let (ra, rb) = (rank(a), rank(b))
        if ra != rb { return ra < rb }
        switch (a, b) {
        case (.boolean(let x), .boolean(let y)): return !x && y
        case (.integer(let x), .integer(let y)): return x < y
        case (.integer(let x), .number(let y)): return Double(x) < y || (Double(x) == y)
        case (.number(let x), .integer(let y)): return x < Double(y)
        case (.number(let x), .number(let y)): return x < y
        default: break
        }
        if ra == 3 { return Array(a.stringBytes).lexicographicallyPrecedes(b.stringBytes) }
        return a.description < b.description
    }

    /// The bytes of a `.string` or `.bytes` value (empty otherwise).
    private var stringBytes: [UInt8] {
        switch self {
        case .string(let s): return Array(s.utf8)
        case .bytes(let b): return b
        default: return []
        }
    }
}
