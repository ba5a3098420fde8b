// LuaValueConvertible: Swift types that convert to and from LuaValue (Int, Double, String, Bool, arrays, dictionaries).

/// A Swift value that can become a Lua value.
///
/// `Int`, `Int64`, `Int32`, `Double`, `Float`, `String`, `Bool`, arrays and string-keyed
/// dictionaries of conforming values, optionals, `LuaTable` and `LuaValue` itself conform.
public protocol LuaValueRepresentable {
    /// The Lua value for `self`.
    var luaValue: LuaValue { get }
}

/// A Swift value that can be made from a Lua value, and back (GRDB's
/// `DatabaseValueConvertible`, mlua's `FromLua`/`IntoLua`).
///
/// ```swift
/// let n = try Int(luaValue: values[0])          // throws "number expected, got string"
/// let names = try [String](luaValue: lua["names"])
/// ```
public protocol LuaValueConvertible: LuaValueRepresentable {
    /// Converts a Lua value.
    /// - Throws: `LuaConversionError` when the value has the wrong type or does not fit.
    init(luaValue: LuaValue) throws
}

/// A Lua value that could not be converted to the Swift type asked for.
/// Its `message` reads like Lua's own (`number expected, got table`), so a Swift function
/// registered with `LuaRuntime.register` can rethrow it as an argument error (see
/// `Array<LuaValue>.argument(_:as:)`).
public struct LuaConversionError: Error, Equatable, CustomStringConvertible {
    /// What went wrong, e.g. `number has no integer representation`.
    public let message: String
    public init(_ message: String) { self.message = message }
    /// `expected` expected, got the value's Lua type.
    public init(expected: String, got value: LuaValue) {
        self.message = "\(expected) expected, got \(value.typeName == "nil" ? "no value" : value.typeName)"
    }
    public var description: String { message }
}

extension LuaValue: LuaValueConvertible {
    public var luaValue: LuaValue { self }
    public init(luaValue: LuaValue) { self = luaValue }
}

extension Bool: LuaValueConvertible {
    public var luaValue: LuaValue { .boolean(self) }
    /// Only `true` and `false` convert (use `LuaValue.isTruthy` for Lua's truthiness).
    public init(luaValue: LuaValue) throws {
        guard case .boolean(let b) = luaValue else { throw LuaConversionError(expected: "boolean", got: luaValue) }
        self = b
    }
}

extension Int64: LuaValueConvertible {
    public var luaValue: LuaValue { .integer(self) }
    /// Integers, and floats with an exact integer value (as `math.tointeger`).
    public init(luaValue: LuaValue) throws {
        switch luaValue {
        case .integer(let i): self = i
        case .number(let d):
            guard let i = Int64(exactly: d) else { throw LuaConversionError("number has no integer representation") }
            self = i
        default: throw LuaConversionError(expected: "number", got: luaValue)
        }
    }
}

/// An integer type narrower than Int64 from a Lua value: through `Int64`, range-checked.
private func narrowInteger<T: FixedWidthInteger>(_ v: LuaValue) throws -> T {
    guard let i = T(exactly: try Int64(luaValue: v)) else { throw LuaConversionError("integer out of range") }
    return i
}

extension Int: LuaValueConvertible {
    public var luaValue: LuaValue { .integer(Int64(self)) }
    public init(luaValue: LuaValue) throws { self = try narrowInteger(luaValue) }
}

extension Int32: LuaValueConvertible {
    public var luaValue: LuaValue { .integer(Int64(self)) }
    public init(luaValue: LuaValue) throws { self = try narrowInteger(luaValue) }
}

extension Double: LuaValueConvertible {
    public var luaValue: LuaValue { .number(self) }
    /// Floats and integers.
    public init(luaValue: LuaValue) throws {
        switch luaValue {
        case .number(let d): self = d
        case .integer(let i): self = Double(i)
        default: throw LuaConversionError(expected: "number", got: luaValue)
        }
    }
}

extension Float: LuaValueConvertible {
    public var luaValue: LuaValue { .number(Double(self)) }
    public init(luaValue: LuaValue) throws { self = Float(try Double(luaValue: luaValue)) }
}

extension String: LuaValueConvertible {
    public var luaValue: LuaValue { .string(self) }
    /// Strings only (no number coercion); a Lua string that is not UTF-8 (`.bytes`) is decoded
    /// with replacement characters.
    public init(luaValue: LuaValue) throws {
        switch luaValue {
        case .string(let s): self = s
        case .bytes(let b): self = String(decoding: b, as: UTF8.self)
        default: throw LuaConversionError(expected: "string", got: luaValue)
        }
    }
}

extension LuaTable: LuaValueConvertible {
    public var luaValue: LuaValue { .table(self) }
    public init(luaValue: LuaValue) throws {
        guard case .table(let t) = luaValue else { throw LuaConversionError(expected: "table", got: luaValue) }
        self = t
    }
}

extension Optional: LuaValueRepresentable where Wrapped: LuaValueRepresentable {
    public var luaValue: LuaValue { self?.luaValue ?? .nil }
}

extension Optional: LuaValueConvertible where Wrapped: LuaValueConvertible {
    /// `nil` for Lua's nil, otherwise the wrapped conversion.
    public init(luaValue: LuaValue) throws {
        self = luaValue == .nil ? nil : try Wrapped(luaValue: luaValue)
    }
}

extension Array: LuaValueRepresentable where Element: LuaValueRepresentable {
    /// A sequence `{a, b, c}`.
    public var luaValue: LuaValue { .table(LuaTable(array: map(\.luaValue))) }
}

extension Array: LuaValueConvertible where Element: LuaValueConvertible {
    /// A sequence: a table whose keys are exactly 1…n.
    /// - Throws: `LuaConversionError` for a non-table, a table with other keys, or an element
    ///   that does not convert (`element 3: number expected, got string`).
    public init(luaValue: LuaValue) throws {
        guard case .table(let t) = luaValue else { throw LuaConversionError(expected: "table", got: luaValue) }
        let seq = t.array
        guard seq.count == t.count else { throw LuaConversionError("table is not a sequence (keys other than 1…n)") }
        self = try seq.enumerated().map { i, v in
            do { return try Element(luaValue: v) } catch let e as LuaConversionError {
                throw LuaConversionError("element \(i + 1): \(e.message)")
            }
        }
    }
}

extension Dictionary: LuaValueRepresentable where Key == String, Value: LuaValueRepresentable {
    /// A table with string keys.
    public var luaValue: LuaValue {
        var t = LuaTable()
        for (k, v) in self { t[k] = v.luaValue }
        return .table(t)
    }
}

extension Dictionary: LuaValueConvertible where Key == String, Value: LuaValueConvertible {
    /// A table whose keys are all strings.
    /// - Throws: `LuaConversionError` for another key type or a value that does not convert.
    public init(luaValue: LuaValue) throws {
        guard case .table(let t) = luaValue else { throw LuaConversionError(expected: "table", got: luaValue) }
        var out: [String: Value] = [:]
        for (k, v) in t.entries {
            guard case .string(let key) = k else { throw LuaConversionError("table has a \(k.typeName) key (string keys expected)") }
            do { out[key] = try Value(luaValue: v) } catch let e as LuaConversionError {
                throw LuaConversionError("field '\(key)': \(e.message)")
            }
        }
        self = out
    }
}

extension Array where Element == LuaValue {
    /// Argument `index` (0-based, as the array is) converted to `T`, for Swift functions
    /// registered with `LuaRuntime.register`. A missing argument reads as `nil`.
    /// - Throws: `LuaArgumentError`, which Lua reports as
    ///   `bad argument #1 to 'name' (number expected, got string)`.
    public func argument<T: LuaValueConvertible>(_ index: Int, as type: T.Type = T.self) throws -> T {
        let value = index < count ? self[index] : .nil
        do { return try T(luaValue: value) } catch let e as LuaConversionError {
            throw LuaArgumentError(Int32(index + 1), e.message)
        }
    }
}
