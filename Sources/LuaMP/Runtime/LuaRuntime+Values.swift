// LuaRuntime+Values: typed access to globals, results and calls through LuaValueConvertible.

extension LuaRuntime {
    /// The global `name` (raw access, no metamethods); `nil` when unset.
    public func global(_ name: String) -> LuaValue { self[name] }

    /// The global `name` converted to `T`.
    ///
    /// ```swift
    /// let workers = try lua.global("workers", as: Int.self)
    /// ```
    /// - Throws: `LuaConversionError` when it has another type.
    public func global<T: LuaValueConvertible>(_ name: String, as type: T.Type = T.self) throws -> T {
        try T(luaValue: self[name])
    }

    /// Sets the global `name` (raw access). A `[String: Int]` becomes a table, `nil` unsets it.
    /// - Throws: `LuaRaise` for a value Lua cannot hold: a table with a nil or NaN key (Lua
    ///   raises "index is nil"/"index is NaN" for those) or nested more than 200 levels. The
    ///   global is then unchanged.
    public func setGlobal(_ name: String, _ value: some LuaValueRepresentable) throws {
        try setGlobalValue(name, value.luaValue)
    }

    /// Evaluates Lua code (see `evaluate(_:)`) and converts its first result to `T`
    /// (no result reads as `nil`).
    ///
    /// ```swift
    /// let n = try lua.evaluate("#arg", as: Int.self)
    /// ```
    /// - Throws: `LuaError` from Lua, `LuaConversionError` when the result has another type.
    public func evaluate<T: LuaValueConvertible>(_ code: String, as type: T.Type) throws -> T {
        try T(luaValue: evaluate(code).first ?? .nil)
    }

    /// Calls the global function `name` with Swift arguments and converts its first result.
    ///
    /// ```swift
    /// let total = try lua.call(global: "sum", [1, 2, 3], as: Int.self)
    /// ```
    /// - Throws: `LuaRaise` if it is not callable, `LuaError.runtime` for its errors,
    ///   `LuaConversionError` when the result has another type.
    public func call<T: LuaValueConvertible>(global name: String, _ arguments: [any LuaValueRepresentable],
                                              as type: T.Type) throws -> T {
        try T(luaValue: call(global: name, arguments.map(\.luaValue)).first ?? .nil)
    }
}
