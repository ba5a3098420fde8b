// Moving LuaValues on and off the Lua stack.
internal import CLua
internal import LuaMPShims

extension LuaStack {
    /// How deeply `push` nests tables (Lua's own C-call limit, `LUAI_MAXCCALLS`, is 200).
    static let maxPushDepth = 200

    /// Tables with more entries and strings with more bytes are created under a protected
    /// call, so running out of memory there is an error, not a raise over Swift frames.
    static let protectedSize = 4096

    /// Pushes `v`. Stack: [-0, +1] on success, [-0, +0] when it throws.
    /// - Throws: `LuaRaise` for a table with a nil or NaN key (which Lua tables cannot hold),
    ///   one nested more than `maxPushDepth` levels, or no room on the Lua stack;
    ///   `LuaError.memory` (Lua's memory error) when memory runs out.
    func push(_ v: LuaValue) throws {
        let base = top
        do {
            try LuaMemory.needReserve()
            try push(v, depth: 0)
        } catch {
            top = base
            throw error
        }
    }

    private func push(_ v: LuaValue, depth: Int) throws {
        // Once the reserve is spent, the next allocation could raise over this frame.
        try LuaMemory.checkNotLow()
        switch v {
        case .nil: pushNil()
        case .boolean(let b): push(b)
        case .integer(let i): push(i)
        case .number(let d): push(d)
        case .string(let s):
            if s.utf8.count <= Self.protectedSize {
                push(s)
            } else {
                var s = s
                try s.withUTF8 { try pushProtected(bytes: UnsafeRawBufferPointer($0)) }
            }
        case .bytes(let b):
            if b.count <= Self.protectedSize { push(bytes: b) } else { try b.withUnsafeBytes { try pushProtected(bytes: $0) } }
        case .table(let t):
            guard depth < Self.maxPushDepth else {
                throw LuaRaise("cannot push a table nested more than \(Self.maxPushDepth) levels deep")
            }
            guard checkStack(3) else { throw LuaRaise("Lua stack overflow pushing a nested table") }
            // Presized for every entry, so filling it never grows it under this frame.
            if t.count <= Self.protectedSize {
                newTable(hashCount: Int32(t.count))
            } else {
                let status = luamp_pcreatetable(L, 0, Int32(clamping: t.count))
                if status == LUA_ERRMEM { throw LuaMemory.error }
                if status != LUA_OK { throw LuaRaise("a table of \(t.count) entries is too big for Lua") }
            }
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

    /// Pushes a big string under a protected call. Stack: [-0, +1], or [-0, +0] when it throws.
    private func pushProtected(bytes b: UnsafeRawBufferPointer) throws {
        let status = luamp_ppushlstring(L, b.baseAddress?.assumingMemoryBound(to: CChar.self), b.count)
        if status == LUA_ERRMEM { throw LuaMemory.error }
        if status != LUA_OK { throw LuaRaise("a string of \(b.count) bytes is too big for Lua") }
    }

    /// Reads the value at `i` without popping it. Tables are copied (at most `depth` levels;
    /// a table that contains itself throws); functions and the rest become references.
    /// - Throws: `LuaRaise` for cyclic or too deep tables; `LuaError.memory` (Lua's memory
    ///   error) when the copy does not fit in memory.
    func value(at i: Int32, state: LuaState, depth: Int = 64) throws -> LuaValue {
        try LuaMemory.needReserve()
        var onPath = Set<UnsafeRawPointer>()
        var budget = LuaMemory.Budget()
        let i = absIndex(i)
        return try preservingTop { try value(at: i, state: state, depth: depth, onPath: &onPath, budget: &budget) }
    }

    private func value(at i: Int32, state: LuaState, depth: Int, onPath: inout Set<UnsafeRawPointer>,
                       budget: inout LuaMemory.Budget) throws -> LuaValue {
        // References take registry slots (Lua allocations): once the reserve is spent, stop.
        try LuaMemory.checkNotLow()
        switch type(at: i) {
        case .none, .nil: return .nil
        case .boolean: return .boolean(toBool(i))
        case .number:
            if isInteger(i), let v = toInteger(i) { return .integer(v) }
            return .number(toNumber(i) ?? .nan)
        case .string:
            let b = toBytes(i)!
            try LuaMemory.probe(b.count)
            try budget.spend(b.count + 32)
            if let s = String(validating: b, as: UTF8.self) { return .string(s) }
            return .bytes(Array(b))
        case .table:
            let p = toPointer(i)!
            guard depth > 0 else { throw LuaRaise("table nested too deeply to convert") }
            guard onPath.insert(p).inserted else { throw LuaRaise("cannot convert a table that contains itself") }
            defer { onPath.remove(p) }
            guard checkStack(4) else { throw LuaRaise("Lua stack overflow converting a nested table") }
            // Counted first, so the copy is allocated once, after checking it fits.
            var n = 0
            pushNil()
            while lua_next(L, i) != 0 { n += 1; pop() }
            let bytes = n * 3 * MemoryLayout<(LuaValue, LuaValue)>.stride + 128
            try LuaMemory.probe(bytes)
            try budget.spend(bytes)
            var t = LuaTable(minimumCapacity: n)
            pushNil()
            while lua_next(L, i) != 0 {
                let k = try value(at: top - 1, state: state, depth: depth - 1, onPath: &onPath, budget: &budget)
                let v = try value(at: top, state: state, depth: depth - 1, onPath: &onPath, budget: &budget)
                t[k] = v
                pop()
            }
            return .table(t)
        case .function:
            try budget.spend(64)
            pushValue(i)
            return .function(state.reference(fromTopOf: self))
        case .userdata, .lightUserdata, .thread:
            try budget.spend(64)
            pushValue(i)
            return .opaque(state.reference(fromTopOf: self))
        }
    }
}
