// C functions by name: the table of standard-library and mp functions the codec may send.
internal import CLua
internal import LuaMPShims

/// Standard-library C functions (`print`, `math.sqrt`, `string.format`, `coroutine.wrap` …) and
/// `mp.*` functions travel by name. The tables live in the registry: `function → name` and
/// `name → function`. The standard libraries are snapshotted when `mp` installs (so a script
/// that later reassigns `math.sqrt` does not rename it); `mp.*` is scanned on first need.
enum CodecNames {
    static let namesKey = "luamp.codec.names"
    static let functionsKey = "luamp.codec.functions"
    static let mpKey = "luamp.codec.mp"
    static let libraries = ["_G", "string", "table", "math", "io", "os", "coroutine", "utf8", "debug", "package"]

    /// Builds the tables from `package.loaded` and remembers the mp table at `mp`. Stack: [-0, +0].
    static func install(_ s: LuaStack, mp: Int32) {
        let mp = s.absIndex(mp)
        s.preservingTop {
            s.newTable(); let names = s.top
            s.newTable(); let funcs = s.top
            if s.getGlobal("package") == .table, s.rawGet(-1, field: "loaded") == .table {
                let loaded = s.top
                for lib in libraries where s.rawGet(loaded, field: lib) == .table {
                    add(s, table: s.top, prefix: lib == "_G" ? "" : lib + ".", names: names, funcs: funcs)
                }
            }
            let reg = s.registryIndex()
            s.pushValue(names); s.rawSet(reg, field: namesKey)
            s.pushValue(funcs); s.rawSet(reg, field: functionsKey)
            s.pushValue(mp); s.rawSet(reg, field: mpKey)
        }
    }

    /// Adds every C function of the table at `t` under `prefix + key`. Stack: [-0, +0].
    private static func add(_ s: LuaStack, table t: Int32, prefix: String, names: Int32, funcs: Int32) {
        let L = s.L
        lua_pushnil(L)
        while lua_next(L, t) != 0 {
            if lua_type(L, -2) == LUA_TSTRING, lua_iscfunction(L, -1) != 0, let key = s.toString(-2) {
                let name = prefix + key
                lua_pushvalue(L, -1)
                if lua_rawget(L, names) == LUA_TNIL {   // first name wins: names[fn] = name
                    lua_settop(L, -2)
                    lua_pushvalue(L, -1)
                    s.push(name)
                    lua_rawset(L, names)
                } else {
                    lua_settop(L, -2)
                }
                s.push(name); lua_pushvalue(L, -2); lua_rawset(L, funcs)
            }
            lua_settop(L, -2)
        }
    }

    /// Scans the mp table (its functions are C closures created by the installers). Stack: [-0, +0].
    private static func addMP(_ s: LuaStack) {
        s.preservingTop {
            let reg = s.registryIndex()
            guard s.rawGet(reg, field: mpKey) == .table else { return }
            let mp = s.top
            s.rawGet(reg, field: namesKey); let names = s.top
            s.rawGet(reg, field: functionsKey); let funcs = s.top
            add(s, table: mp, prefix: "mp.", names: names, funcs: funcs)
        }
    }

    /// The name of the C function at `idx`, or nil if it is not a known one. Stack: [-0, +0].
    static func name(_ L: OpaquePointer, at idx: Int32) -> String? {
        let s = LuaStack(L)
        let idx = s.absIndex(idx)
        func lookup() -> String? {
            s.preservingTop {
                guard s.rawGet(s.registryIndex(), field: namesKey) == .table else { return nil }
                lua_pushvalue(L, idx)
                guard lua_rawget(L, -2) == LUA_TSTRING else { return nil }
                return s.toString(-1)
            }
        }
        if let n = lookup() { return n }
        addMP(s)
        return lookup()
    }

    /// Pushes the C function called `name`; false (nothing pushed) if unknown. Stack: [-0, +1|0].
    static func push(_ L: OpaquePointer, name: String) -> Bool {
        let s = LuaStack(L)
        func lookup() -> Bool {
            let top = s.top
            guard s.rawGet(s.registryIndex(), field: functionsKey) == .table,
                  s.rawGet(-1, field: name) == .function else { s.top = top; return false }
            s.remove(-2)
            return true
        }
        if lookup() { return true }
        addMP(s)
        return lookup()
    }
}
