// DictKind: the Lua face of mp.Dict — indexing, methods, snapshots and atomic read-modify-write.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// `d:with(k, fn)`: the stripe lock of `k` is held while `fn(old)` runs; its error passes through unchanged.
private let dictWithSource = """
local pcall, error = pcall, error
return function(self, k, fn)
  local old = self:_with_begin(k)
  local ok, new = pcall(fn, old)
  self:_with_end(k, ok, new)
  if not ok then error(new, 0) end
  return new
end
"""

enum DictKind {
    static let tag = KindTag("mp.Dict", magic: SharedDict.magic)

    static let kind: SharedKind = {
        var k = SharedDict.kindHooks("Dict")
        k.luaMethods = [("with", dictWithSource)]
        k.methods = [
            ("get", { s in
                let d = try dict(s)
                if try !push(s, d, key: 2) { s.pushValue(3) }
                return 1
            }),
            ("set", { s in try set(s, try dict(s), key: 2, value: 3); return 0 }),
            ("update", { s in
                let d = try dict(s)
                guard s.type(at: 2) == .table || s.type(at: 2) == .userdata else {
                    throw LuaArgumentError(2, "table expected, got \(s.typeName(at: 2))")
                }
                if s.type(at: 2) == .userdata { try pushSnapshot(s, try dict(s, 2), keys: true, values: true); s.replace(2) }
                s.top = 2
                s.pushNil()
                while lua_next(s.L, 2) != 0 {      // raw traversal of a table we own: never raises
                    try set(s, d, key: 3, value: 4)
                    s.pop()
                }
                return 0
            }),
            ("keys", { s in try pushSnapshot(s, try dict(s), keys: true, values: false); return 1 }),
            ("values", { s in try pushSnapshot(s, try dict(s), keys: false, values: true); return 1 }),
            ("totable", { s in try pushSnapshot(s, try dict(s), keys: true, values: true); return 1 }),
            ("clear", { s in
                let d = try dict(s)
                try fullArena("mp.Dict", "clear") { try d.locked { try d.clear() } }
                return 0
            }),
            ("pop", { s in
                let d = try dict(s)
                let copy: [UInt8]? = try TableKey.with(s, 2) { tag, key in
                    let h = TableKey.hash(tag, key)
                    return d.locked { () -> [UInt8]? in
                        guard let e = d.lookup(h, tag, key) else { return nil }
                        let v = [UInt8](d.parts(e).value)
                        d.remove(h, tag, key)
                        return v
                    }
                }
                guard let c = copy else { s.pushValue(3); return 1 }
                try c.withUnsafeBytes { try Codec.decode(s, $0) }
                return 1
            }),
            ("setdefault", { s in
                let d = try dict(s)
                s.top = 3
                if try push(s, d, key: 2) { return 1 }
                // Insert only if still absent: encode first, then check and publish under the mutex.
                let existing: [UInt8]? = try TableKey.with(s, 2) { tag, key in
                    let h = TableKey.hash(tag, key)
                    return try withValue(s, 3) { v, more in
                        try fullArena("mp.Dict", "setdefault") {
                            try d.locked { () -> [UInt8]? in
                                if let old = d.lookup(h, tag, key) { return [UInt8](d.parts(old).value) }
                                let e = try d.makeEntry(hash: h, tag: tag, key: key, value: v, more: more)
                                do { try d.put(e, h, tag, key) } catch { d.journal.cancel(); throw error }
                                return nil
                            }
                        }
                    }
                }
                if let c = existing { try c.withUnsafeBytes { try Codec.decode(s, $0) } } else { s.pushValue(3) }
                return 1
            }),
            ("incr", { s in
                let d = try dict(s)
                let n = s.isNoneOrNil(3) ? 1 : try s.checkInteger(3)
                var notInteger: String? = nil
                let result: Int64 = try TableKey.with(s, 2) { tag, key in
                    let h = TableKey.hash(tag, key)
                    let st = d.stripe(h)
                    _ = try st.lock()
                    defer { st.unlock() }
                    return try fullArena("mp.Dict", "incr") {
                        try d.locked { () -> Int64 in
                            var old: Int64 = 0
                            if let e = d.lookup(h, tag, key) {
                                guard let v = StoredValue.integer(d.parts(e).value) else {
                                    notInteger = StoredValue.describeType(d.parts(e).value)
                                    return 0
                                }
                                old = v
                            }
                            let new = old &+ n
                            var w = StoredValue.integerBytes(new)
                            let e = try withUnsafeBytes(of: &w) {
                                try d.makeEntry(hash: h, tag: tag, key: key,
                                                value: UnsafeRawBufferPointer(rebasing: $0[0..<StoredValue.integerByteCount]))
                            }
                            do { try d.put(e, h, tag, key) } catch { d.journal.cancel(); throw error }
                            return new
                        }
                    }
                }
                if let what = notInteger {
                    let key = s.type(at: 2) == .string ? "\"\(s.describe(2))\"" : s.describe(2)
                    throw LuaRaise("mp.Dict:incr: the value at key \(key) is \(what), not an integer")
                }
                s.push(result)
                return 1
            }),
            ("_with_begin", { s in
                let d = try dict(s)
                s.top = 2
                let h = try TableKey.with(s, 2) { tag, key in TableKey.hash(tag, key) }
                let st = d.stripe(h)
                _ = try st.lock()
                do {
                    if try !push(s, d, key: 2) { s.pushNil() }
                } catch {
                    st.unlock()
                    throw error
                }
                return 1
            }),
            ("_with_end", { s in
                let d = try dict(s)
                let h = try TableKey.with(s, 2) { tag, key in TableKey.hash(tag, key) }
                let st = d.stripe(h)
                defer { st.unlock() }
                if s.toBool(3) { try set(s, d, key: 2, value: 4) }
                return 0
            }),
        ]
        k.metamethods = [
            ("__len", { s in s.push(Int64(try dict(s).count)); return 1 }),
            // pairs(d) walks a snapshot taken when the loop starts.
            ("__pairs", { s in
                let d = try dict(s)
                guard s.getGlobal("next") == .function else { throw LuaRaise("pairs(mp.Dict) needs the global 'next'") }
                try pushSnapshot(s, d, keys: true, values: true)
                s.pushNil()
                return 3
            }),
        ]
        k.fastIndex = { L, a in runFast(L, a) { s in
            let d = SharedDict(try Arena.require(), try DictKind.tag.ref(s, 1).pointee.offset)
            if s.type(at: 2) == .string {
                SharedKinds.pushMethod(s)
                if s.type(at: -1) != .nil { return 1 }
                s.pop()
            }
            if try !DictKind.push(s, d, key: 2) { s.pushNil() }
            return 1
        } }
        k.fastNewIndex = { L, a in runFast(L, a) { s in
            try DictKind.set(s, SharedDict(try Arena.require(), try DictKind.tag.ref(s, 1).pointee.offset), key: 2, value: 3)
            return 0
        } }
        return SharedKind(name: "Dict", magic: SharedDict.magic, bytes: SharedDict.bytes, k)
    }()

    /// Argument `i` as a Dict.
    static func dict(_ s: LuaStack, _ i: Int32 = 1) throws -> SharedDict {
        SharedDict(try Arena.require(), try tag.ref(s, i).pointee.offset)
    }


    /// Lends the codec bytes of the value at `i` to `body` (big strings in two parts, uncopied).
    static func withValue<R>(_ s: LuaStack, _ i: Int32, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer?) throws -> R) throws -> R {
        if let r = try ScalarValue.withBytes(s, i, { try body($0, nil) }) { return r }
        var out: R? = nil
        if try EncodedString.withParts(s, at: i, { prefix, bytes in out = try body(prefix, bytes) }) { return out! }
        return try Codec.withEncoded(s, at: i, path: "value") { try body($0, nil) }
    }

    /// Pushes `d[key]` (key at slot `k`) and returns true, or pushes nothing and returns false.
    static func push(_ s: LuaStack, _ d: SharedDict, key k: Int32) throws -> Bool {
        try TableKey.with(s, k) { tag, key in
            let h = TableKey.hash(tag, key)
            return try ValueCopy.push(s) { copy in
                d.locked { if let e = d.lookup(h, tag, key) { copy(d.parts(e).value) } }
            }
        }
    }

    /// `d[key] = value` (slots `k`, `v`); nil deletes.
    static func set(_ s: LuaStack, _ d: SharedDict, key k: Int32, value v: Int32) throws {
        if s.isNoneOrNil(v) {
            try TableKey.with(s, k) { tag, key in
                let h = TableKey.hash(tag, key)
                d.locked { _ = d.remove(h, tag, key) }
            }
            return
        }
        try TableKey.with(s, k) { tag, key in
            let h = TableKey.hash(tag, key)
            try withValue(s, v) { bytes, more in
                try fullArena("mp.Dict", "set") {
                    try d.locked {
                        let e = try d.makeEntry(hash: h, tag: tag, key: key, value: bytes, more: more)
                        do { try d.put(e, h, tag, key) } catch { d.journal.cancel(); throw error }
                    }
                }
            }
        }
    }

    /// Pushes a plain table copied from `d` under its mutex: `{k = v}` (keys and values),
    /// `{k1, k2, …}` (keys only) or `{v1, v2, …}` (values only). Stack: [-0, +1].
    static func pushSnapshot(_ s: LuaStack, _ d: SharedDict, keys: Bool, values: Bool) throws {
        var buf = SnapshotBuffer()
        d.locked {
            buf.reserve(d.count * 32)
            d.forEach { k, v in buf.append(k, v) }
        }
        let n = buf.records
        s.newTable(arrayCount: keys && values ? 0 : Int32(min(n, 1 << 24)), hashCount: keys && values ? Int32(min(n, 1 << 24)) : 0)
        let t = s.top
        var i: Int64 = 0
        var key: UnsafeRawBufferPointer? = nil
        try buf.forEachPart { part in
            guard let kb = key else { key = part; return }
            key = nil
            i += 1
            if keys { TableKey.push(s, kb) }
            if values {
                do { try Codec.decode(s, part) } catch { s.top = t; throw error }
            }
            if keys && values { lua_rawset(s.L, t) } else { s.rawSet(t, index: i) }
        }
    }

    /// `mp.Dict([t])`.
    static func install(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "Dict") { s in
            s.top = 1
            if !s.isNoneOrNil(1) && s.type(at: 1) != .table && !(SharedKinds.toRef(s, 1, kind) != nil) {
                throw LuaArgumentError(1, "table expected, got \(s.typeName(at: 1))")
            }
            let a = try Arena.require()
            let d: SharedDict
            do { d = try SharedDict.create(a) } catch let e as ArenaFull { throw LuaRaise("cannot create a Dict: \(e)") }
            SharedKinds.push(s, kind, offset: d.offset, owned: true)
            if !s.isNoneOrNil(1) {
                if s.type(at: 1) == .userdata { try pushSnapshot(s, try dict(s, 1), keys: true, values: true); s.replace(1) }
                let top = s.top
                s.pushNil()
                while lua_next(s.L, 1) != 0 {
                    try set(s, d, key: top + 1, value: top + 2)
                    s.pop()
                }
            }
            return 1
        }
    }
}
