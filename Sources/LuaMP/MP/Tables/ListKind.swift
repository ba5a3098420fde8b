// ListKind: the Lua face of mp.List — 1-based indexing, append/extend/insert/pop, snapshots.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

enum ListKind {
    static let tag = KindTag("mp.List", magic: SharedList.magic)

    static let kind: SharedKind = {
        var k = SharedList.kindHooks("List")
        k.methods = [
            ("append", { s in
                let l = try list(s)
                s.top = 2
                try append(s, l, 2)
                return 0
            }),
            ("extend", { s in
                let l = try list(s)
                s.top = 2
                if s.type(at: 2) == .userdata { try pushSnapshot(s, try list(s, 2)); s.replace(2) }
                guard s.type(at: 2) == .table else { throw LuaArgumentError(2, "table expected, got \(s.typeName(at: 2))") }
                try appendAll(s, l, from: 2)
                return 0
            }),
            ("insert", { s in
                let l = try list(s)
                s.top = 3
                let i = try s.checkInteger(2)
                try withEntry(s, l, 3, "insert") { e in
                    guard i >= 1, i <= Int64(l.count) + 1 else {
                        throw LuaArgumentError(2, "position \(i) out of range (1..\(l.count + 1))")
                    }
                    try l.insert(Int(i - 1), e)
                }
                return 0
            }),
            ("pop", { s in
                let l = try list(s)
                let at: Int64? = s.isNoneOrNil(2) ? nil : try s.checkInteger(2)
                var copy: [UInt8]? = nil
                try fullArena("mp.List", "pop") {
                    try l.locked {
                        let c = l.count
                        let i = at ?? Int64(c)
                        if c == 0 && at == nil { return }
                        guard i >= 1, i <= Int64(c) else { throw LuaArgumentError(2, "index \(i) out of range (1..\(c))") }
                        try l.remove(Int(i - 1)) { copy = [UInt8]($0) }
                    }
                }
                guard let b = copy else { throw LuaRaise("pop from an empty mp.List") }
                try b.withUnsafeBytes { try Codec.decode(s, $0) }
                return 1
            }),
            ("totable", { s in try pushSnapshot(s, try list(s)); return 1 }),
            ("clear", { s in
                let l = try list(s)
                try fullArena("mp.List", "clear") { try l.locked { try l.clear() } }
                return 0
            }),
        ]
        k.metamethods = [
            ("__len", { s in s.push(Int64(try list(s).count)); return 1 }),
            ("__pairs", { s in
                _ = try list(s)
                guard s.getGlobal("next") == .function else { throw LuaRaise("pairs(mp.List) needs the global 'next'") }
                try pushSnapshot(s, try list(s))
                s.pushNil()
                return 3
            }),
        ]
        k.fastIndex = { L, a in runFast(L, a) { s in
            let l = SharedList(try Arena.require(), try ListKind.tag.ref(s, 1).pointee.offset)
            guard let i = s.isInteger(2) ? s.toInteger(2) : nil else {
                SharedKinds.pushMethod(s)
                return 1
            }
            let found = try ValueCopy.push(s) { copy in
                l.locked { if let e = l.entry(Int(i - 1)) { copy(l.bytes(e)) } }
            }
            if !found { s.pushNil() }                              // out of range: nil, so ipairs ends
            return 1
        } }
        k.fastNewIndex = { L, a in runFast(L, a) { s in
            let l = SharedList(try Arena.require(), try ListKind.tag.ref(s, 1).pointee.offset)
            guard let i = s.isInteger(2) ? s.toInteger(2) : nil else {
                throw LuaRaise("mp.List index must be an integer, got \(s.describe(2))")
            }
            try withEntry(s, l, 3, "set") { e in
                let c = l.count
                guard i >= 1, i <= Int64(c) + 1 else {
                    throw LuaRaise("mp.List index \(i) out of range (1..\(c + 1))")
                }
                if Int(i) == c + 1 { try l.append(e) } else { l.replace(Int(i - 1), e) }
            }
            return 0
        } }
        return SharedKind(name: "List", magic: SharedList.magic, bytes: SharedList.bytes, k)
    }()

    static func list(_ s: LuaStack, _ i: Int32 = 1) throws -> SharedList {
        SharedList(try Arena.require(), try tag.ref(s, i).pointee.offset)
    }


    /// Encodes the value at `v`, then with the mutex held makes an entry of it and runs `body`
    /// with it; the entry is freed if `body` throws.
    static func withEntry(_ s: LuaStack, _ l: SharedList, _ v: Int32, _ op: String, _ body: (UInt64) throws -> Void) throws {
        try DictKind.withValue(s, v) { bytes, more in
            try fullArena("mp.List", op) {
                try l.locked {
                    let e = try l.makeEntry(bytes, more)
                    do { try body(e) } catch { l.journal.cancel(); throw error }
                }
            }
        }
    }

    static func append(_ s: LuaStack, _ l: SharedList, _ v: Int32) throws {
        try withEntry(s, l, v, "append") { e in try l.append(e) }
    }

    /// Pushes `{v1, v2, …}` copied under the mutex. Stack: [-0, +1].
    static func pushSnapshot(_ s: LuaStack, _ l: SharedList) throws {
        var buf = SnapshotBuffer()
        l.locked { l.forEach { b in buf.append(b) } }
        s.newTable(arrayCount: Int32(min(buf.records, 1 << 24)))
        let t = s.top
        var i: Int64 = 0
        try buf.forEachPart { part in
            i += 1
            do { try Codec.decode(s, part) } catch { s.top = t; throw error }
            s.rawSet(t, index: i)
        }
    }

    /// `mp.List([t])`.
    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "List") { s in
            s.top = 1
            if !s.isNoneOrNil(1) && s.type(at: 1) != .table && SharedKinds.toRef(s, 1, kind) == nil {
                throw LuaArgumentError(1, "table expected, got \(s.typeName(at: 1))")
            }
            if s.type(at: 1) == .userdata { try pushSnapshot(s, try list(s, 1)); s.replace(1) }
            let a = try Arena.require()
            let l: SharedList
            do { l = try SharedList.create(a) } catch let e as ArenaFull { throw LuaRaise("cannot create a List: \(e)") }
            SharedKinds.push(s, kind, offset: l.offset, owned: true)
            if s.type(at: 1) == .table { try appendAll(s, l, from: 1) }
            return 1
        }
    }

    /// Appends `t[1]`, …, `t[#t]` (raw) of the table at `t` (each pushed, appended, popped).
    private static func appendAll(_ s: LuaStack, _ l: SharedList, from t: Int32) throws {
        let n = s.rawLength(t)
        var i: Int64 = 1
        while i <= n {
            s.rawGet(t, index: i)
            try append(s, l, s.top)
            s.pop()
            i += 1
        }
    }
}

/// `mp.Dict`, `mp.List`: shared tables in the arena, sendable like every mp object.
extension MPModule {
    static func installTables(_ s: LuaStack, _ t: Int32) {
        _ = tableKindsRegistered
        JournalFaults.configure()
        DictKind.install(s, t)
        ListKind.install(s, t)
    }
}

private let tableKindsRegistered: Void = {
    SharedKinds.register(DictKind.kind)
    SharedKinds.register(ListKind.kind)
}()
