// The codec in-process: seeded round-trip properties, a regression corpus of tricky inputs, and a mutation fuzz.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LuaMP
internal import CLua
internal import LuaMPShims

/// The directory holding Tests/lua (codec_gen.lua is shared with the Lua-level tests).
private let luaTestsDir: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)                          // CodecTests.swift, LuaMPTests
    return parts.joined(separator: "/") + "/lua"
}()

private func runtimeWithGenerator() throws -> LuaRuntime {
    let lua = try LuaRuntime()
    _ = try lua.run(string: "package.path = '\(luaTestsDir)/?.lua;' .. package.path; G = require 'codec_gen'")
    return lua
}

/// A splitmix64 generator: reproducible from its seed.
private struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
}

@Suite struct CodecTests {
    @Test func randomValuesRoundTrip() throws {
        let lua = try runtimeWithGenerator()
        let cases = try lua.evaluate("""
            local n = 0
            for seed = 1, 3000 do
              math.randomseed(seed)
              local v = G.value(math.random(1, 8))
              local ok, why = G.equal(v, mp.loads(mp.dumps(v)))
              if not ok then error('seed ' .. seed .. ': ' .. why) end
              n = n + 1
            end
            return n
            """)
        #expect(cases == [.integer(3000)])
    }

    /// The same property through the public-API table walk (the fallback when liblua's layout
    /// differs), and the layout check passing on this platform's liblua.
    @Test func randomValuesRoundTripThroughTheAPIPath() throws {
        let lua = try runtimeWithGenerator()
        #expect(luamp_fasttable_check(lua.state.stack.L) == 1, "liblua layout probe failed: fast path off")
        Encoder.fastTables = false
        defer { Encoder.fastTables = true }
        let cases = try lua.evaluate("""
            for seed = 5001, 6000 do
              math.randomseed(seed)
              local v = G.value(math.random(1, 8))
              local ok, why = G.equal(v, mp.loads(mp.dumps(v)))
              if not ok then error('seed ' .. seed .. ': ' .. why) end
            end
            return 1000
            """)
        #expect(cases == [.integer(1000)])
    }

    @Test func tupleRoundTripKeepsNilsAndCount() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        _ = try lua.run(string: "T = {1, nil, 'x', nil}")
        s.preservingTop {
            s.pushNil(); s.push(Int64(7)); s.pushNil(); s.push("z")
            var out: [UInt8] = [0xAA]
            #expect(throws: Never.self) { try Codec.encodeTuple(s, from: -4, count: 4, path: "args", into: &out) }
            #expect(out.first == 0xAA)
            let n = out.dropFirst().withUnsafeBytes { try? Codec.decodeTuple(s, $0) }
            #expect(n == 4)
            #expect(s.type(at: -4) == .nil && s.toInteger(-3) == 7 && s.type(at: -2) == .nil && s.toString(-1) == "z")
        }
    }

    @Test func sendErrorNamesThePathInTuples() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        try s.preservingTop {
            s.push(Int64(1))
            _ = try lua.run(string: "C = {conn = coroutine.create(print)}")
            s.getGlobal("C")
            var out: [UInt8] = []
            do {
                try Codec.encodeTuple(s, from: -2, count: 2, path: "args", into: &out)
                Issue.record("expected SendError")
            } catch let e as MPError {
                #expect(e.kind == "SendError")
                #expect(e.message == "args[2].conn: cannot send a thread (coroutine)")
            }
            #expect(out.isEmpty)
        }
    }

    /// mp objects go through their registered HandleKind; unknown userdata and light userdata do not.
    @Test func handlesUseTheirRegisteredKind() throws {
        Handles.register(HandleKind(name: "CodecTestKind", encode: { s, i in
            [UInt8(truncatingIfNeeded: s.rawLength(i)), 7]
        }, decode: { s, bytes in
            s.push("handle \(bytes[0]) \(bytes[1])")
        }))
        let lua = try LuaRuntime()
        let s = lua.state.stack
        try s.preservingTop {
            _ = lua_newuserdatauv(s.L, 5, 0)
            s.newTable()
            s.push("CodecTestKind")
            s.rawSet(-2, field: "__mpkind")
            lua_setmetatable(s.L, -2)
            let ud = s.top
            s.newTable()
            s.pushValue(ud)
            s.rawSet(-2, field: "h")
            let bytes = try Codec.encode(s, at: -1, path: "value")
            try bytes.withUnsafeBytes { try Codec.decode(s, $0) }
            s.rawGet(-1, field: "h")
            #expect(s.toString(-1) == "handle 5 7")

            lua_pushlightuserdata(s.L, UnsafeMutableRawPointer(bitPattern: 0x1234))
            do {
                _ = try Codec.encode(s, at: -1, path: "value")
                Issue.record("expected SendError")
            } catch let e as MPError {
                #expect(e.message.hasPrefix("value: cannot send a light userdata (it is not a field of a loaded module"))
            }
        }
    }

    @Test func encodeAndDecodeLeaveTheStackBalanced() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        _ = try lua.run(string: "V = {1, {2, {3}}, f = function() return 1 end}; V.me = V")
        s.getGlobal("V")
        let top = s.top
        let bytes = try Codec.encode(s, at: -1, path: "value")
        #expect(s.top == top)
        try bytes.withUnsafeBytes { try Codec.decode(s, $0) }
        #expect(s.top == top + 1)
        #expect(throws: MPError.self) { try bytes.dropLast().withUnsafeBytes { try Codec.decode(s, $0) } }
        #expect(s.top == top + 1)
    }

    /// Hand-made inputs that once were (or could be) dangerous: each must raise DecodeError.
    @Test func corpusOfTrickyInputsIsRejected() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        let deep = [UInt8]([1, 0]) + [UInt8](repeating: 0, count: 0) + Array(repeating: [0x0A, 1, 0, 0, 0, 0, 0, 0, 0], count: 10_000).flatMap { $0 }
        let corpus: [(String, [UInt8])] = [
            ("empty", []),
            ("version only", [1]),
            ("wrong version", [9, 0, 0]),
            ("tuple header for a value", [1, 1, 0, 0, 0, 0]),
            ("unknown tag", [1, 0, 0xEE]),
            ("truncated int64", [1, 0, 5, 1, 2, 3]),
            ("string length beyond input", [1, 0, 8, 0xFF, 0xFF, 0xFF, 0x7F, 0x41]),
            ("str64 huge length", [1, 0, 9] + [UInt8](repeating: 0xFF, count: 8)),
            ("table counts beyond input", [1, 0, 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("nil key", [1, 0, 0x0A, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2]),
            ("NaN key", [1, 0, 0x0A, 0, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F, 2]),
            ("ref without objects", [1, 0, 0x0C, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("forward ref", [1, 0, 0x0B, 1, 0, 0, 0, 0, 0, 0, 0, 0x0C, 50, 0, 0, 0, 0, 0, 0, 0]),
            ("self ref to non-shared", [1, 0, 0x0A, 1, 0, 0, 0, 0, 0, 0, 0, 0x0C, 2, 0, 0, 0, 0, 0, 0, 0]),
            ("deep nesting", deep),
            ("function with a bad MAC", [1, 0, 0x0D, 4, 0, 0, 0, 0x1B, 0x4C, 0x75, 0x61] + [UInt8](repeating: 0, count: 9)),
            ("unknown C function", [1, 0, 0x10, 3, 0x66, 0x6F, 0x6F]),
            ("unknown handle kind", [1, 0, 0x11, 1, 0x5A, 0, 0, 0, 0]),
            ("trailing bytes", [1, 0, 0, 0]),
            ("huge tuple count", [1, 1, 0xFF, 0xFF, 0xFF, 0xFF]),
        ]
        for (name, bytes) in corpus {
            let top = s.top
            do {
                try bytes.withUnsafeBytes { b in
                    if name.contains("tuple count") { _ = try Codec.decodeTuple(s, b) } else { try Codec.decode(s, b) }
                }
                Issue.record("\(name): decoded without error")
            } catch let e as MPError {
                #expect(e.kind == "DecodeError", "\(name)")
            }
            #expect(s.top == top, "\(name): stack not restored")
        }
    }

    /// A by-reference message round-trips with identity, and every single-byte change to it is a
    /// DecodeError or a value, never a crash (names and paths are MAC-checked before resolving).
    @Test func byReferenceMessagesResolveAndResistMutation() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        _ = try lua.run(string: """
            local M = { Point = {} }
            M.Point.__index = M.Point
            function M.Point.len(p) return p.x + p.y end
            package.loaded.refmod = M
            R = { M, M.Point, setmetatable({ x = 1, y = 2 }, M.Point), string.format, math }
            """)
        s.getGlobal("R")
        let message = try Codec.encode(s, at: -1, path: "value")
        s.pop()
        #expect(message.contains(CodecFormat.Tag.reference) || message.contains(CodecFormat.Tag.sharedReference))
        try message.withUnsafeBytes { try Codec.decode(s, $0) }
        lua_setglobal(s.L, "BACK")
        let same = try lua.run(string: """
            return BACK[1] == package.loaded.refmod and BACK[2] == BACK[1].Point
               and getmetatable(BACK[3]) == BACK[2] and BACK[3]:len() == 3 and BACK[5] == math
            """)
        #expect(same.first == .boolean(true))
        let top = s.top
        for at in 2..<message.count {
            for v: UInt8 in [0, 1, 0x13, 0x7F, 0xFF] where message[at] != v {
                var m = message
                m[at] = v
                do { try m.withUnsafeBytes { try Codec.decode(s, $0) } } catch let e as MPError {
                    #expect(e.kind == "DecodeError")
                }
                s.top = top
            }
        }
    }

    /// Closures sharing a variable travel as joined upvalues; every single-byte change to such a
    /// message (offsets, indices, tags) must decode or raise DecodeError, never reach a bad join.
    @Test func everyByteMutationOfJoinedUpvaluesIsSafe() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        _ = try lua.run(string: """
            local n, m = 0, 10
            J = { inc = function() n = n + 1; return n end, get = function() return n, m end,
                  set = function(v) m = v end }
            """)
        s.getGlobal("J")
        let message = try Codec.encode(s, at: -1, path: "value")
        s.pop()
        #expect(message.contains(CodecFormat.Tag.joinedUpvalue))
        let top = s.top
        var rejected = 0
        for at in 2..<message.count {
            for v: UInt8 in [0, 1, 2, 0x12, 0x7F, 0xFF] where message[at] != v {
                var m = message
                m[at] = v
                do { try m.withUnsafeBytes { try Codec.decode(s, $0) } } catch let e as MPError {
                    #expect(e.kind == "DecodeError")
                    rejected += 1
                }
                s.top = top
            }
        }
        #expect(rejected > 0)
    }

    /// Seeded mutation fuzz: valid messages (values and tuples) with bytes flipped, truncated, inserted, spliced, plus
    /// random bytes. Every input must decode or raise DecodeError; nothing may crash.
    @Test func mutationFuzzNeverCrashes() throws {
        let lua = try runtimeWithGenerator()
        let s = lua.state.stack
        var seeds: [[UInt8]] = []
        _ = try lua.run(string: "local n = 0; SHARED = {function() n = n + 1 end, function() return n end}")
        s.getGlobal("SHARED")
        seeds.append(try Codec.encode(s, at: -1, path: "value"))
        s.pop()
        // By-reference messages: modules and their fields, a registered class, instances whose
        // metatable travels by value and by reference, and a userdata rebuilt by __mp_reduce.
        _ = try lua.run(string: """
            local M = { Point = {}, new = function(a, b) return { a, b } end }
            M.Point.__index = M.Point
            package.loaded.fuzzmod = M
            local Reg = { kind = "registered" }
            mp.register("fuzz.Reg", Reg)
            local Local = { __index = { len = function(p) return #p end } }
            BYREF = { string, math.floor, M, M.new, setmetatable({ 1, 2 }, M.Point), setmetatable({}, Reg),
                      setmetatable({ 3 }, Local), setmetatable({ 4 }, Local),
                      f = function(x) return string.rep(x, 2), table.concat, M.Point end }
            """)
        s.getGlobal("BYREF")
        _ = lua_newuserdatauv(s.L, 8, 0)
        _ = try lua.run(string: "UDMT = { __mp_reduce = function(u) return package.loaded.fuzzmod.new, 7, 'x' end }")
        s.getGlobal("UDMT")
        lua_setmetatable(s.L, -2)
        lua_pushvalue(s.L, -1)
        lua_rawseti(s.L, -3, 20)
        lua_rawseti(s.L, -2, 21)   // the same userdata twice: one constructor call, shared
        seeds.append(try Codec.encode(s, at: -1, path: "value"))
        s.pop()
        for seed in 1...60 {
            _ = try lua.run(string: "math.randomseed(\(seed)); FUZZ = G.value(4)")
            s.getGlobal("FUZZ")
            seeds.append(try Codec.encode(s, at: -1, path: "value"))
            s.push(Int64(seed)); s.pushNil()
            var tuple: [UInt8] = []
            try Codec.encodeTuple(s, from: -3, count: 3, path: "args", into: &tuple)
            seeds.append(tuple)
            s.pop(3)
        }
        let iterations = LuaMPTestEnv.long ? 20_000_000 : 1_000_000
        var rng = SplitMix(state: 0xC0DEC)
        var buf: [UInt8] = []
        var decoded = 0
        let top = s.top
        for i in 0..<iterations {
            let base = seeds[rng.below(seeds.count)]
            buf.removeAll(keepingCapacity: true)
            switch rng.below(6) {
            case 0: buf.append(contentsOf: base.prefix(rng.below(base.count + 1)))   // truncation
            case 1:                                                                   // random bytes after a header
                buf.append(contentsOf: [1, UInt8(rng.below(2))])
                for _ in 0..<rng.below(40) { buf.append(UInt8(truncatingIfNeeded: rng.next())) }
            case 2:                                                                   // splice two messages
                let other = seeds[rng.below(seeds.count)]
                buf.append(contentsOf: base.prefix(rng.below(base.count + 1)))
                buf.append(contentsOf: other.suffix(rng.below(other.count + 1)))
            default:                                                                  // flips/sets/inserts
                buf.append(contentsOf: base)
                for _ in 0...rng.below(4) where !buf.isEmpty {
                    let at = rng.below(buf.count)
                    switch rng.below(4) {
                    case 0: buf[at] ^= UInt8(1 << rng.below(8))
                    case 1: buf[at] = [0, 0xFF, 0x7F, 0x80, 1][rng.below(5)]
                    case 2: buf.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    default: buf.remove(at: at)
                    }
                }
            }
            do {
                try buf.withUnsafeBytes { b in
                    if b.count > 1 && b[1] == CodecFormat.kindTuple { _ = try Codec.decodeTuple(s, b) } else { try Codec.decode(s, b) }
                }
                decoded += 1
                s.top = top
            } catch let e as MPError {
                if e.kind != "DecodeError" { Issue.record("iteration \(i): \(e)") }
            }
            if s.top != top { Issue.record("iteration \(i): stack not restored"); s.top = top }
            if i % 100_000 == 0 { _ = try lua.run(string: "collectgarbage()") }
        }
        #expect(decoded > 0)
    }
}

enum LuaMPTestEnv {
    static var long: Bool { getenv("LUAMP_LONG").map { String(cString: $0) == "1" } ?? false }
}

/// `CodecValues` (LuaValues with no Lua state, the fork server's app side) writes and reads the
/// codec's own format: what it encodes `Codec` decodes into a Lua state, and back.
@Suite struct CodecValuesTests {
    private let values: [LuaValue] = [.nil, true, false, 0, -129, .integer(1 << 40), 2.5, -0.0, "é", "",
                                      .string(String(repeating: "s", count: 300)), .bytes([0, 255]),
                                      ["k": [1, 2, .nil, 4], 1: "a", 2: ["x": true], 2.5: 1]]

    @Test func itsMessagesAreTheCodecs() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        var bytes: [UInt8] = []
        try CodecValues.encodeTuple(values, into: &bytes)
        let top = s.top
        let n = try bytes.withUnsafeBytes { try Codec.decodeTuple(s, $0) }
        #expect(n == Int32(values.count))
        let decoded = try (1...n).map { try s.value(at: top + $0, state: lua.state) }
        #expect(decoded == values)
        var back: [UInt8] = []
        try Codec.encodeTuple(s, from: top + 1, count: n, path: "args", into: &back)
        s.top = top
        let again = try back.withUnsafeBytes { b in var r = ByteReader(b); return try CodecValues.decodeTuple(&r) }
        #expect(again == values)
        var one: [UInt8] = []
        try CodecValues.encode(values[12], into: &one)
        try one.withUnsafeBytes { try Codec.decode(s, $0) }
        #expect(try s.value(at: -1, state: lua.state) == values[12])
        s.top = top
    }

    @Test func itRefusesWhatIsNotAPlainValue() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        try lua.run(string: "f = function() end")
        var out: [UInt8] = []
        #expect(throws: CodecValues.Refusal.self) { try CodecValues.encode(lua["f"], into: &out) }
        var deep: LuaValue = 1
        for _ in 0..<(CodecFormat.maxDepth + 1) { deep = .table(LuaTable(array: [deep])) }
        #expect(throws: CodecValues.Refusal.self) { try CodecValues.encode(deep, into: &out) }
        let top = s.top
        _ = s.getGlobal("f")
        let fn = try Codec.encode(s, at: -1, path: "v")
        s.top = top
        #expect(throws: MPError.self) { _ = try fn.withUnsafeBytes { b in var r = ByteReader(b); return try CodecValues.decode(&r) } }
    }
}
