// Checking the arguments of Swift functions called from Lua, with luaL_check*-style messages.

extension LuaStack {
    private func typeError(_ i: Int32, _ expected: String) -> LuaArgumentError {
        LuaArgumentError(i, "\(expected) expected, got \(type(at: i) == .none ? "no value" : typeName(at: i))")
    }

    /// An integer argument (floats with an exact integer value are accepted, as luaL_checkinteger).
    func checkInteger(_ i: Int32) throws -> Int64 {
        if let v = toInteger(i) { return v }
        if type(at: i) == .number || (type(at: i) == .string && toNumber(i) != nil) {
            throw LuaArgumentError(i, "number has no integer representation")
        }
        throw typeError(i, "number")
    }
    func optInteger(_ i: Int32, _ def: Int64) throws -> Int64 {
        isNoneOrNil(i) ? def : try checkInteger(i)
    }
    func checkNumber(_ i: Int32) throws -> Double {
        if let v = toNumber(i) { return v }
        throw typeError(i, "number")
    }
    func optNumber(_ i: Int32) throws -> Double? {
        isNoneOrNil(i) ? nil : try checkNumber(i)
    }
    func checkString(_ i: Int32) throws -> String {
        guard type(at: i) == .string || type(at: i) == .number, let s = toString(i) else {
            throw typeError(i, "string")
        }
        return s
    }
    func optString(_ i: Int32) throws -> String? {
        isNoneOrNil(i) ? nil : try checkString(i)
    }
    func checkType(_ i: Int32, _ t: LuaType) throws {
        if type(at: i) != t { throw typeError(i, t.name) }
    }
    /// A boolean-ish option: nil/none gives `def`, anything else its truth.
    func optBool(_ i: Int32, _ def: Bool) -> Bool {
        isNoneOrNil(i) ? def : toBool(i)
    }
}
