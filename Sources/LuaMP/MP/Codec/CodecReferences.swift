// Values that cross by reference: modules (package.loaded), their fields a few levels down, and mp.register names.
internal import CLua
internal import LuaMPShims

/// The sender's index of values sent by name instead of by value (docs/codec.md "By reference").
///
/// Built from the values registered with `mp.register` (first) and from every loaded module
/// except `_G` (sorted by name) and its fields up to `maxDepth` levels (breadth first, so each
/// value gets its shortest name; keys must be identifiers). Only tables, functions, userdata and
/// light userdata are indexed. Every indexed value is anchored in a Lua table, so no address in
/// the map can be reused by another object while the index lives. The index is rebuilt when
/// package.loaded changes (a cheap fingerprint checked once per message that meets an object),
/// when something is registered, and once per message when a value that cannot be sent by value
/// (a C function, a light userdata, a userdata) is not found (a field added to a module later).
final class ReferenceIndex {
    /// Where a name resolves on the receiver.
    static let sourceModule: UInt8 = 0
    static let sourceRegistered: UInt8 = 1
    /// Field levels below a module that are indexed (`socket.dns.toip` is 2).
    static let maxDepth = 3
    /// What a SendError for an unresolvable value suggests.
    static let help = "it is not a field of a loaded module: require it inside the function, make it a module, or mp.register it"
    /// Most values one index holds (a module graph larger than this is cut off).
    static let maxEntries = 1 << 16

    struct Entry {
        /// The record after the tag byte: source, type, name, path, MAC (see `CodecFormat.Tag.reference`).
        let record: [UInt8]
        /// `cjson.encode`, `registered 'Point'`: for messages.
        let display: String
    }

    /// Object address (`lua_topointer`) → entry index; light userdata are kept apart in `lights`.
    private(set) var objects = PointerMap()
    /// A one-hash Bloom filter over `objects` (8,192 bits, stays in L1): most tables of a message
    /// are rejected with one load, before the map is probed.
    let filter = UnsafeMutablePointer<UInt64>.allocate(capacity: ReferenceIndex.filterWords)
    static let filterWords = 128
    /// Filters with every bit set / clear, for encoders before / without an index: constants
    /// of the process, written once and only read afterwards (kept as addresses, `Int`s, so the
    /// constants are plainly `Sendable`).
    static var fullFilter: UnsafePointer<UInt64> { UnsafePointer(bitPattern: fullFilterAddress)! }
    static var emptyFilter: UnsafePointer<UInt64> { UnsafePointer(bitPattern: emptyFilterAddress)! }
    private static let fullFilterAddress = constantFilter(~0)
    private static let emptyFilterAddress = constantFilter(0)
    private static func constantFilter(_ word: UInt64) -> Int {
        let p = UnsafeMutablePointer<UInt64>.allocate(capacity: filterWords)
        p.initialize(repeating: word, count: filterWords)
        return Int(bitPattern: p)
    }
    private(set) var lights: [UInt: Int] = [:]
    private(set) var entries: [Entry] = []
    /// Fingerprint of package.loaded when built; 0 forces a rebuild.
    var fingerprint: UInt64 = 0

    init() { filter.initialize(repeating: 0, count: ReferenceIndex.filterWords) }

    deinit {
        objects.release()
        filter.deallocate()
    }

    /// The filter bit of address `p`: word and mask.
    @inline(__always)
    static func filterBit(_ p: UnsafeRawPointer) -> (Int, UInt64) {
        let h = Int(truncatingIfNeeded: (UInt64(UInt(bitPattern: p)) &* 0x9E37_79B9_7F4A_7C15) >> 51)   // 13 bits
        return (h >> 6, 1 << UInt64(h & 63))
    }

    /// Whether `p` may be in `objects` (false: certainly not).
    @inline(__always)
    static func mayContain(_ filter: UnsafePointer<UInt64>, _ p: UnsafeRawPointer) -> Bool {
        let (w, m) = filterBit(p)
        return filter[w] & m != 0
    }

    /// The index's registry key: the address of a byte allocated once (an `Int`, a plain
    /// `Sendable` constant; light userdata keys are compared by address).
    private static let registryKeyAddress = Int(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1))
    private static var registryKey: UnsafeRawPointer { UnsafeRawPointer(bitPattern: registryKeyAddress)! }
    static let registeredKey = "luamp.codec.registered"

    /// The type code a reference carries: `lua_type`, plus 0x80 for C functions.
    static func typeCode(_ L: OpaquePointer, _ idx: Int32) -> UInt8 {
        let t = lua_type(L, idx)
        return UInt8(truncatingIfNeeded: t) | (t == LUA_TFUNCTION && lua_iscfunction(L, idx) != 0 ? 0x80 : 0)
    }

    static func typeDescription(_ code: UInt8) -> String {
        if code == UInt8(LUA_TFUNCTION) | 0x80 { return "C function" }
        if code == UInt8(LUA_TFUNCTION) { return "Lua function" }
        if code == UInt8(LUA_TLIGHTUSERDATA) { return "light userdata" }
        switch Int32(code) {
        case LUA_TTABLE: return "table"
        case LUA_TUSERDATA: return "userdata"
        default: return "value of type \(code)"
        }
    }

    // MARK: the per-state index

    /// Creates the state's index (empty; built on first use) and the mp.register table. The index
    /// userdata's user values are the anchor table (1) and package.loaded (2). Stack: [-0, +0].
    static func install(_ s: LuaStack) {
        let L = s.L
        let reg = s.registryIndex()
        s.preservingTop {
            StateHolder.push(s, ReferenceIndex(), userValues: 2)
            let holder = s.top
            if s.rawGet(reg, field: LUA_LOADED_TABLE) == .table {
                _ = lua_setiuservalue(L, holder, 2)
            } else {
                s.pop()
            }
            lua_pushvalue(L, holder)
            lua_rawsetp(L, reg, registryKey)
            if s.rawGet(reg, field: registeredKey) != .table {
                s.pop()
                s.newTable()
                s.rawSet(reg, field: registeredKey)
            }
        }
    }

    /// The state's index, or nil before install. Allocates nothing. Stack: [-0, +0].
    static func of(_ L: OpaquePointer) -> ReferenceIndex? {
        defer { lua_settop(L, -2) }
        guard lua_rawgetp(L, luamp_registryindex(), registryKey) == LUA_TUSERDATA else { return nil }
        return StateHolder.object(L, at: -1, as: ReferenceIndex.self)
    }

    /// Whether package.loaded changed since the index was built (or something was registered).
    /// Allocates nothing. Stack: [-0, +0].
    func isStale(_ L: OpaquePointer) -> Bool {
        guard fingerprint != 0 else { return true }
        let top = lua_gettop(L)
        defer { lua_settop(L, top) }
        guard pushLoaded(L) else { return false }
        return ReferenceIndex.fingerprint(L, lua_gettop(L)) != fingerprint
    }

    /// Rebuilds the index. Pushes strings and tables: the encoder pauses the GC first. Stack: [-0, +0].
    func rebuild(_ L: OpaquePointer) {
        let top = lua_gettop(L)
        defer { lua_settop(L, top) }
        guard lua_checkstack(L, 12) != 0, pushLoaded(L) else { return }
        let loaded = lua_gettop(L)
        build(L, loaded: loaded)
        fingerprint = ReferenceIndex.fingerprint(L, loaded)
    }

    /// Pushes package.loaded (the registry's `_LOADED`, kept as user value 2). Stack: [-0, +1] or [-0, +0] (false).
    private func pushLoaded(_ L: OpaquePointer) -> Bool {
        guard lua_rawgetp(L, luamp_registryindex(), ReferenceIndex.registryKey) == LUA_TUSERDATA else {
            lua_settop(L, -2)
            return false
        }
        let t = lua_getiuservalue(L, -1, 2)
        luamp_remove(L, -2)
        if t != LUA_TTABLE { lua_settop(L, -2); return false }
        return true
    }

    /// Marks the state's index stale (after mp.register). Stack: [-0, +0].
    static func invalidate(_ L: OpaquePointer) {
        of(L)?.fingerprint = 0
    }

    /// A hash of package.loaded's entries: from memory when the table layout is known, else by lua_next.
    private static func fingerprint(_ L: OpaquePointer, _ t: Int32) -> UInt64 {
        let fast = luamp_table_fingerprint(lua_topointer(L, t))
        if fast != 0 { return fast }
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        lua_pushnil(L)
        while lua_next(L, t) != 0 {
            h = (h ^ UInt64(UInt(bitPattern: lua_topointer(L, -2)))) &* 0x100_0000_01B3
            h = (h ^ UInt64(UInt(bitPattern: lua_topointer(L, -1)))) &* 0x100_0000_01B3
            lua_settop(L, -2)
        }
        return h | 1
    }

    // MARK: building

    private func build(_ L: OpaquePointer, loaded: Int32) {
        let s = LuaStack(L)
        objects.release()
        objects = PointerMap()
        filter.update(repeating: 0, count: ReferenceIndex.filterWords)
        lights = [:]
        entries = []
        guard lua_checkstack(L, 8) != 0 else { return }
        // The anchor table keeps every indexed value alive: it is the index userdata's user value.
        _ = lua_rawgetp(L, luamp_registryindex(), ReferenceIndex.registryKey)
        let holder = lua_gettop(L)
        lua_createtable(L, 64, 0)
        let anchors = lua_gettop(L)
        lua_pushvalue(L, anchors)
        _ = lua_setiuservalue(L, holder, 1)
        var anchored: lua_Integer = 0
        // (anchor index, path, depth) of tables still to scan
        var queue: [(Int32, String, String, Int)] = []
        func add(_ v: Int32, source: UInt8, name: String, path: String) -> Bool {
            let type = lua_type(L, v)
            guard type == LUA_TTABLE || type == LUA_TFUNCTION || type == LUA_TUSERDATA || type == LUA_TLIGHTUSERDATA,
                  entries.count < ReferenceIndex.maxEntries else { return false }
            let key = UInt(bitPattern: lua_topointer(L, v))
            if type == LUA_TLIGHTUSERDATA {
                if lights[key] != nil { return false }
                lights[key] = entries.count
            } else {
                if key == 0 || objects.get(UnsafeRawPointer(bitPattern: key)!) != nil { return false }
                objects.insert(UnsafeRawPointer(bitPattern: key)!, entries.count)
                let (w, m) = ReferenceIndex.filterBit(UnsafeRawPointer(bitPattern: key)!)
                filter[w] |= m
            }
            entries.append(ReferenceIndex.entry(source: source, type: ReferenceIndex.typeCode(L, v), name: name, path: path))
            lua_pushvalue(L, v)
            anchored += 1
            lua_rawseti(L, anchors, anchored)
            return type == LUA_TTABLE
        }
        luamp_pushglobaltable(L)
        let globals = lua_topointer(L, -1)
        lua_settop(L, -2)
        // Registered values come first: an explicit name wins over a module path.
        if s.rawGet(s.registryIndex(), field: ReferenceIndex.registeredKey) == .table {
            let t = lua_gettop(L)
            var named: [String] = []
            lua_pushnil(L)
            while lua_next(L, t) != 0 {
                if lua_type(L, -2) == LUA_TSTRING, let k = s.toString(-2) { named.append(k) }
                lua_settop(L, -2)
            }
            for k in named.sorted() {
                s.push(k)
                lua_rawget(L, t)
                _ = add(lua_gettop(L), source: ReferenceIndex.sourceRegistered, name: k, path: "")
                lua_settop(L, -2)
            }
            lua_settop(L, t - 1)
        } else {
            lua_settop(L, -2)
        }
        var modules: [String] = []
        lua_pushnil(L)
        while lua_next(L, loaded) != 0 {
            if lua_type(L, -2) == LUA_TSTRING, let k = s.toString(-2), k != "_G", lua_topointer(L, -1) != globals {
                modules.append(k)
            }
            lua_settop(L, -2)
        }
        for m in modules.sorted() where m.utf8.count < 0x10000 {
            s.push(m)
            lua_rawget(L, loaded)
            if add(lua_gettop(L), source: ReferenceIndex.sourceModule, name: m, path: "") {
                queue.append((Int32(anchored), m, "", 1))
            }
            lua_settop(L, -2)
        }
        var q = 0
        while q < queue.count {
            let (slot, module, path, depth) = queue[q]
            q += 1
            lua_rawgeti(L, anchors, lua_Integer(slot))
            let t = lua_gettop(L)
            lua_pushnil(L)
            while lua_next(L, t) != 0 {
                if lua_type(L, -2) == LUA_TSTRING, lua_topointer(L, -1) != globals,
                   let k = s.toString(-2), LuaLiteral.isIdentifier(Array(k.utf8)) {
                    let p = path.isEmpty ? k : path + "." + k
                    if p.utf8.count < 0x10000, add(lua_gettop(L), source: ReferenceIndex.sourceModule, name: module, path: p),
                       depth < ReferenceIndex.maxDepth {
                        queue.append((Int32(anchored), module, p, depth + 1))
                    }
                }
                lua_settop(L, -2)
            }
            lua_settop(L, t - 1)
        }
    }

    /// The record bytes of one reference, MAC included.
    static func entry(source: UInt8, type: UInt8, name: String, path: String) -> Entry {
        var r: [UInt8] = [source, type]
        func text(_ t: String) {
            let n = UInt16(t.utf8.count)
            r.append(UInt8(n & 0xFF)); r.append(UInt8(n >> 8))
            r.append(contentsOf: t.utf8)
        }
        text(name)
        text(path)
        let mac = r.withUnsafeBytes { CodecKey.mac($0) }
        withUnsafeBytes(of: mac.littleEndian) { r.append(contentsOf: $0) }
        let display = source == sourceRegistered ? "registered '\(name)'" : (path.isEmpty ? name : "\(name).\(path)")
        return Entry(record: r, display: display)
    }

    /// The entry for the value at `idx` of type `type`, if it crosses by reference (`objects` is
    /// the caller's copy of the object map).
    @inline(__always)
    func lookup(_ L: OpaquePointer, _ idx: Int32, type: Int32, objects: PointerMap) -> Int? {
        if type == LUA_TLIGHTUSERDATA { return lights[UInt(bitPattern: lua_topointer(L, idx))] }
        guard let p = lua_topointer(L, idx) else { return nil }
        return objects.get(p)
    }
}
