// The Swift Lua layer in-process: values, calls, errors, and Swift callbacks that raise.
import Testing
@testable import LuaMP

/// Counts live instances, so a test can prove Swift frames were unwound (not longjmp'd over).
final class Tracked {
    nonisolated(unsafe) static var live = 0
    init() { Tracked.live += 1 }
    deinit { Tracked.live -= 1 }
}

struct Oops: Error, CustomStringConvertible { var description: String { "oops from Swift" } }

@Suite(.serialized) struct LuaLayerTests {
    @Test func evaluateReturnsValuesOfEveryKind() throws {
        let lua = try LuaRuntime()
        #expect(try lua.evaluate("return 6 * 7, 'x'") == [.integer(42), .string("x")])
        #expect(try lua.evaluate("1.5") == [.number(1.5)])
        #expect(try lua.evaluate("nil, true, false") == [.nil, .boolean(true), .boolean(false)])
        #expect(try lua.evaluate("'a\\0b\\255'") == [.bytes([97, 0, 98, 255])])
        #expect(try lua.evaluate("{1, 2, x = {y = 'z'}}") == [["x": ["y": "z"], 1: 1, 2: 2]])
        let f = try lua.evaluate("function(a) return a + 1 end")
        guard case .function = f[0] else { Issue.record("expected a function"); return }
        #expect(try lua.call(f[0], [.integer(1)]) == [.integer(2)])
    }

    @Test func globalsReadAndWrite() throws {
        let lua = try LuaRuntime()
        lua["answer"] = .integer(42)
        #expect(try lua.evaluate("answer") == [.integer(42)])
        try lua.run(string: "t = {1, 'two', k = 3.5}")
        #expect(lua["t"] == [1: 1, 2: "two", "k": 3.5])
        #expect(lua["missing"] == .nil)
    }

    @Test func nilAndNaNTableKeysAreThrownErrorsNotPanics() throws {
        let lua = try LuaRuntime()
        for (bad, what) in [(LuaValue.nil, "nil"), (.number(.nan), "NaN")] {
            var t = LuaTable()
            t[bad] = 1
            t["ok"] = 2
            let nested: LuaValue = ["outer": ["inner": .table(t)]]
            #expect(throws: LuaRaise.self, "setGlobal, \(what) key") { try lua.setGlobal("x", nested) }
            do { try lua.setGlobal("x", nested) } catch let e as LuaRaise {
                #expect(e.message == "a Lua table key cannot be \(what)")
            }
            #expect(lua["x"] == .nil, "the global is unchanged")
            lua["x"] = .table(t)                                  // the setter leaves it unchanged too
            #expect(lua["x"] == .nil)
            let f = try lua.evaluate("function(...) return select('#', ...) end")[0]
            #expect(throws: LuaRaise.self, "call argument, \(what) key") { try lua.call(f, [1, .table(t)]) }
            lua.register("bad_result") { _ in [.table(t)] }
            do { _ = try lua.evaluate("bad_result()"); Issue.record("a nil/NaN key in a result must raise") } catch let LuaError.runtime(m, _) {
                #expect(m.contains("a Lua table key cannot be \(what)"), "\(m)")
            }
            #expect(try lua.evaluate("select('#', pcall(bad_result))") == [2], "catchable in Lua")
        }
        #expect(try lua.evaluate("1 + 1") == [2], "the runtime is intact afterwards")
    }

    @Test func tooDeeplyNestedTablesThrowInsteadOfTrapping() throws {
        let lua = try LuaRuntime()
        var v: LuaValue = 1
        for _ in 0..<300 { v = ["t": v] }
        #expect(throws: LuaRaise.self) { try lua.setGlobal("deep", v) }
        #expect(lua["deep"] == .nil)
        let top = try lua.evaluate("1")           // the stack was restored
        #expect(top == [1])
        var ok: LuaValue = 1
        for _ in 0..<150 { ok = [ok] }
        try lua.setGlobal("fine", ok)
        #expect(try lua.evaluate("local d, t = 0, fine while type(t) == 'table' do d, t = d + 1, t[1] end return d") == [150])
    }

    @Test func cyclicTablesAreRefusedNotLooped() throws {
        let lua = try LuaRuntime()
        #expect(throws: (any Error).self) { try lua.evaluate("(function() local t = {} t.t = t return t end)()") }
        #expect(try lua.evaluate("1") == [1])   // the stack is intact afterwards
    }

    @Test func syntaxErrorsSayWhetherInputIsIncomplete() throws {
        let lua = try LuaRuntime()
        #expect(throws: LuaError.syntax(message: "[string \"x\"]:1: 'end' expected near <eof>", incompleteInput: true)) {
            try lua.run(string: "function f()", name: "x")
        }
        do {
            try lua.run(string: "x = = 1", name: "=chunk")
            Issue.record("expected a syntax error")
        } catch let LuaError.syntax(message, incomplete) {
            #expect(message.hasPrefix("chunk:1:"))
            #expect(!incomplete)
        }
    }

    @Test func runtimeErrorsCarryTraceback() throws {
        let lua = try LuaRuntime()
        do {
            try lua.run(string: "local function inner() error('boom') end\nlocal function outer() inner() end\nouter()", name: "=t")
            Issue.record("expected an error")
        } catch let LuaError.runtime(message, traceback) {
            #expect(message == "t:1: boom")
            #expect(traceback.hasPrefix("stack traceback:"))
            #expect(traceback.contains("in local 'inner'") || traceback.contains("in upvalue 'inner'"))
            #expect(traceback.contains("in local 'outer'"))
        }
    }

    @Test func swiftFunctionsReceiveAndReturnValues() throws {
        let lua = try LuaRuntime()
        lua.register("host_add") { args in
            guard case .integer(let a) = args[0], case .integer(let b) = args[1] else { throw LuaRaise("integers expected") }
            return [.integer(a + b), .string("done")]
        }
        #expect(try lua.evaluate("host_add(40, 2)") == [.integer(42), .string("done")])
        #expect(try lua.evaluate("select('#', host_add(1, 2))") == [.integer(2)])
        #expect(try lua.evaluate("pcall(host_add, 1, 'x')") == [.boolean(false), .string("integers expected")])
    }

    /// The no-longjmp-over-Swift property: 10,000 errors raised from Swift callbacks inside
    /// pcall, each while a Swift object is alive in the callback's frame. If any error jumped
    /// over the frame, that object's release would be skipped and `Tracked.live` would not
    /// come back to zero; the boxes of 10,000 short-lived closures must all be collected too.
    @Test func errorsFromSwiftCallbacksNeverLeakSwiftFrames() throws {
        let lua = try LuaRuntime()
        Tracked.live = 0
        lua.register("fails") { args in
            let t = Tracked()
            defer { withExtendedLifetime(t) {} }
            if case .integer(let n) = args.first, n % 2 == 0 { throw Oops() }
            throw LuaRaise("odd \(args.first ?? .nil)")
        }
        let boxesBefore = lua.state.swiftFunctionBoxes.live   // this runtime's: parallel tests never touch it
        let results = try lua.run(string: """
            local n, msgs, tb = 0, {}, nil
            for i = 1, 10000 do
              local ok, err = pcall(fails, i)
              if not ok then n = n + 1; msgs[err] = true end
            end
            -- a fresh Swift closure per iteration: boxes must be released by __gc
            local ok2, err2 = xpcall(function() return fails(1) end, debug.traceback)
            tb = err2
            return n, msgs["oops from Swift"] ~= nil, msgs["odd 9999"] ~= nil, tb
            """)
        #expect(results[0] == .integer(10000))
        #expect(results[1] == .boolean(true))
        #expect(results[2] == .boolean(true))
        guard case .string(let tb) = results[3] else { Issue.record("no traceback"); return }
        #expect(tb.hasPrefix("odd 1\nstack traceback:"))
        #expect(tb.contains("in function 'fails'") || tb.contains("in global 'fails'"))
        #expect(Tracked.live == 0)
        // Closures created and dropped by the thousand are all released by __gc.
        let stack = lua.state.stack
        for i in 0..<5000 {
            stack.pushFunction(name: "tmp\(i)") { _ in throw LuaRaise("x") }
            stack.pop()
        }
        try lua.run(string: "collectgarbage('collect'); collectgarbage('collect')")
        #expect(lua.state.swiftFunctionBoxes.live == boxesBefore)
    }

    /// The leak check above must hold while other tests run in parallel: another runtime's
    /// boxes (made and dropped meanwhile) never change this runtime's count.
    @Test func swiftFunctionBoxesAreCountedPerRuntime() throws {
        let a = try LuaRuntime()
        let before = a.state.swiftFunctionBoxes.live
        #expect(before > 0)                           // mp and the libraries' Swift functions
        do {
            let b = try LuaRuntime()
            b.register("extra") { _ in [] }
            #expect(b.state.swiftFunctionBoxes.live > 0)
            #expect(a.state.swiftFunctionBoxes.live == before)
        }
        #expect(a.state.swiftFunctionBoxes.live == before)
        // a coroutine's Swift calls count on its own state
        _ = try a.run(string: "coroutine.wrap(function() mp.sleep(0) end)()")
        #expect(a.state.swiftFunctionBoxes.live == before)
    }

    @Test func argumentErrorsNameTheFunction() throws {
        let lua = try LuaRuntime()
        let r = try lua.evaluate("select(2, pcall(function() return mp.sleep('x') end))")
        guard case .string(let msg) = r.first else { Issue.record("no message"); return }
        #expect(msg.hasSuffix("bad argument #1 to 'sleep' (number expected, got string)"))
    }

    @Test func mpErrorsAreTablesWithKindAndTostring() throws {
        let lua = try LuaRuntime()
        lua.state.stack.pushFunction(name: "raise_empty") { _ in throw MPError("Empty", "queue is empty") }
        lua.state.stack.setGlobal("raise_empty")
        let r = try lua.evaluate("(function() local ok, e = pcall(raise_empty) return e.kind, e.message, tostring(e) end)()")
        #expect(r == ["Empty", "queue is empty", "Empty: queue is empty"])
    }
}
