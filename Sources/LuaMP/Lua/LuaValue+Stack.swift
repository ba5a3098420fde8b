// Moving LuaValues on and off the Lua stack.
internal import CLua
internal import LuaMPShims

extension LuaStack {
    /// How deeply `push` nests tables (Lua's own C-call limit, `LUAI_MAXCCALLS`, is 200).
    static let maxPushDepth = 200

    /// Pushes `v`. Stack: [-0, +1] on success, [-0, +0] when it throws.
    /// - Throws: `LuaRaise` for a table with a nil or NaN key (which Lua tables cannot hold),
    ///   one nested more than `maxPushDepth` levels, or no room on the Lua stack.
    func push(_ v: LuaValue) throws {
        let base = top
        do { try push(v, depth: 0) } catch {
            top = base
            throw error
        }
    }

    private func push(_ v: LuaValue, depth: Int) throws {
        switch v {
        case .nil: pushNil()
        case .boolean(let b): push(b)
        case .integer(let i): push(i)
        case .number(let d): push(d)
        case .string(let s): push(s)
        case .bytes(let b): push(bytes: b)
        case .table(let t):
            guard depth < Self.maxPushDepth else {
                throw LuaRaise("cannot push a table nested more than \(Self.maxPushDepth) levels deep")
            }
            guard checkStack(3) else { throw LuaRaise("Lua stack overflow pushing a nested table") }
            newTable(hashCount: Int32(min(t.count, 1 << 20)))
            for (k, val) in t.entries {
                switch k {
                case .nil: throw LuaRaise("a Lua table key cannot be nil")
                case .number(let d) where d.isNaN: throw LuaRaise("a Lua table key cannot be NaN")
                default: break
                }
                try push(k, depth: depth + 1)
                try push(val, depth: depth + 1)
                lua_rawset(L, -3)
            }
        case .function(let r), .opaque(let r):
            r.push(onto: self)
        }
    }

    /// Reads the value at `i` without popping it. Tables are copied (at most `depth` levels;
    /// a table that contains itself throws); functions and the rest become references.
    /// - Throws: `LuaRaise` for cyclic or too deep tables.
    func value(at i: Int32, state: LuaState, depth: Int = 64) throws -> LuaValue {
        var onPath = Set<UnsafeRawPointer>()
        let i = absIndex(i)
        return try preservingTop { try value(at: i, state: state, depth: depth, onPath: &onPath) }
    }

    private func value(at i: Int32, state: LuaState, depth: Int, onPath: inout Set<UnsafeRawPointer>) throws -> LuaValue {
        switch type(at: i) {
        case .none, .nil: return .nil
        case .boolean: return .boolean(toBool(i))
        case .number:
            if isInteger(i), let v = toInteger(i) { return .integer(v) }
            return .number(toNumber(i) ?? .nan)
        case .string:
            let b = toBytes(i)!
            if let s = String(validating: b, as: UTF8.self) { return .string(s) }
            return .bytes(Array(b))
        case .table:
            let p = toPointer(i)!
            guard depth > 0 else { throw LuaRaise("table nested too deeply to convert") }
            guard onPath.insert(p).inserted else { throw LuaRaise("cannot convert a table that contains itself") }
            defer { onPath.remove(p) }
            checkStack(4)
            var t = LuaTable()
            pushNil()
            while lua_next(L, i) != 0 {
                let k = try value(at: top - 1, state: state, depth: depth - 1, onPath: &onPath)
                let v = try value(at: top, state: state, depth: depth - 1, onPath: &onPath)
                t[k] = v
                pop()
            }
            return .table(t)
        case .function:
            pushValue(i)
            return .function(state.reference(fromTopOf: self))
        case .userdata, .lightUserdata, .thread:
            pushValue(i)
            return .opaque(state.reference(fromTopOf: self))
        }
    }
}
