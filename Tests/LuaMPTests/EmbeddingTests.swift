// The public embedding API in-process (no fork here: forking behaviour is in Tests/cli/test_embedding.py).
import Foundation
import Testing
@testable import LuaMP

private struct MyError: Error {}

@Suite(.serialized) struct EmbeddingTests {
    @Test func theMinimalEmbeddingSnippetWorks() throws {
        let lua = try LuaRuntime()
        try lua.run(string: "greeting = 'hi'")
        let values: [LuaValue] = try lua.evaluate("return 6 * 7, 'x'")
        #expect(values == [.integer(42), .string("x")])
        lua.register("host_add") { (args: [LuaValue]) throws -> [LuaValue] in
            guard case .integer(let a) = args[0], case .integer(let b) = args[1] else { throw MyError() }
            return [.integer(a + b)]
        }
        #expect(try lua.evaluate("host_add(2, 3)") == [5])
        #expect(try lua.evaluate("mp ~= nil and require('mp') == mp") == [true])
    }

    /// The fork server's messages travel in the one `Frame` and are read with `ByteReader`: a
    /// round trip keeps every value; a cut or altered message is an error, never a crash.
    @Test func forkServerMessagesRoundTripAndRejectDamage() throws {
        var w = WireWriter()
        w.u8(WireReply.values.rawValue)
        let values: [LuaValue] = [.nil, true, 7, 2.5, "é", .bytes([0, 255]), ["k": [1, 2]]]
        try w.values(values)
        let frame = w.frame
        let (n, sum) = try frame.withUnsafeBytes { try Frame.parse($0.baseAddress!, stream: "on a fork-server connection") }
        #expect(n == frame.count - Frame.headerBytes)
        let payload = Array(frame[Frame.headerBytes...])
        #expect(payload.withUnsafeBytes { Frame.checksum($0) } == sum)
        #expect(try ForkServerSession.results(of: WireMessage(bytes: payload)) == values)
        for cut in [1, 5, payload.count / 2, payload.count - 1] {
            #expect(throws: LuaForkServerError("malformed fork-server message")) {
                _ = try ForkServerSession.results(of: WireMessage(bytes: Array(payload[0..<cut])))
            }
        }
    }

    @Test func runFilePassesArgAndDots() throws {
        let path = NSTemporaryDirectory() + "embed-\(getpid()).lua"
        try "#!/usr/bin/env luamp\nreturn arg[0], arg[1], select('#', ...), ...\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lua = try LuaRuntime()
        #expect(try lua.run(file: path, arguments: ["a", "b"]) == [.string(path), "a", 2, "a", "b"])
        #expect(throws: LuaError.self) { try lua.run(file: "/nonexistent/x.lua") }
    }

    @Test func optionsChooseLibrariesAndSearchPaths() throws {
        let bare = try LuaRuntime(options: .init(openStandardLibraries: false, installMP: false))
        #expect(bare.global("print") == .nil && bare.global("mp") == .nil)

        let some = try LuaRuntime(options: .init(libraries: [.base, .string, .package]))
        #expect(try some.evaluate("io, os, debug, type(string.format), type(require)") == [.nil, .nil, .nil, "function", "function"])
        #expect(try some.evaluate("package.loaded.string == string and package.loaded._G == _G") == [true])

        let dir = NSTemporaryDirectory() + "embed-mods-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "return { answer = 42 }".write(toFile: dir + "/appmod.lua", atomically: true, encoding: .utf8)
        let lua = try LuaRuntime(options: .init(packagePath: [dir + "/?.lua"], packageCPath: [dir + "/?.so"]))
        #expect(try lua.evaluate("require('appmod').answer") == [42])
        let path = try lua.evaluate("package.path", as: String.self)
        #expect(path.hasPrefix(dir + "/?.lua;") && path.count > dir.count + 7)
        #expect(try lua.evaluate("package.cpath", as: String.self).hasPrefix(dir + "/?.so;"))
    }

    @Test func ignoreEnvironmentSkipsLuaPath() throws {
        setenv("LUA_PATH_5_4", "/from/env/?.lua", 1)
        defer { unsetenv("LUA_PATH_5_4") }
        #expect(try LuaRuntime().evaluate("package.path", as: String.self) == "/from/env/?.lua")
        #expect(try LuaRuntime(options: .init(ignoreEnvironment: true)).evaluate("package.path", as: String.self) != "/from/env/?.lua")
    }

    @Test func globalsAndCallsWithSwiftTypes() throws {
        let lua = try LuaRuntime()
        try lua.setGlobal("workers", 4)
        try lua.setGlobal("names", ["a", "b"])
        try lua.setGlobal("limits", ["cpu": 2.5])
        #expect(try lua.global("workers", as: Int.self) == 4)
        #expect(try lua.global("names", as: [String].self) == ["a", "b"])
        #expect(try lua.global("limits", as: [String: Double].self) == ["cpu": 2.5])
        try lua.setGlobal("workers", Int?.none)
        #expect(lua.global("workers") == .nil)
        try lua.run(string: "function sum(...) local s = 0 for _, v in ipairs({...}) do s = s + v end return s end")
        #expect(try lua.call(global: "sum", [1, 2, 3]) == [6])
        #expect(try lua.call(global: "sum", [1, 2.5], as: Double.self) == 3.5)
        let f = try lua.evaluate("function(s) return s:upper() end")[0]
        #expect(try lua.call(f, ["abc"]) == ["ABC"])
        #expect(throws: (any Error).self) { try lua.call(global: "nope") }
    }

    @Test func registeredFunctionsConvertArgumentsAndReportBadOnes() throws {
        let lua = try LuaRuntime()
        lua.register("scale") { args in
            let xs = try args.argument(0, as: [Double].self)
            let k = try args.argument(1, as: Double?.self) ?? 2
            return [xs.map { $0 * k }.luaValue, .integer(Int64(xs.count))]
        }
        #expect(try lua.evaluate("scale({1, 2})") == [[2.0, 4.0], 2])
        #expect(try lua.evaluate("scale({1}, 10)") == [[10.0], 1])
        do {
            _ = try lua.run(string: "scale('x')", name: "=app")
            Issue.record("expected an error")
        } catch let LuaError.runtime(message, traceback) {
            #expect(message == "app:1: bad argument #1 to 'scale' (table expected, got string)")
            #expect(traceback.hasPrefix("stack traceback:"))
        }
        do {
            _ = try lua.run(string: "scale({1, 'two'})")
            Issue.record("expected an error")
        } catch let e as LuaError {
            #expect(e.message.contains("bad argument #1 to 'scale' (element 2: number expected, got string)"))
        }
        lua.register("fails") { _ in throw MyError() }
        #expect(try lua.evaluate("select('#', pcall(fails))") == [2])
    }

    @Test func conversionsBetweenLuaAndSwiftTypes() throws {
        #expect(try Int(luaValue: 3) == 3)
        #expect(try Int(luaValue: 3.0) == 3)
        #expect(throws: LuaConversionError("number has no integer representation")) { try Int(luaValue: 3.5) }
        #expect(throws: LuaConversionError("number expected, got string")) { try Int(luaValue: "3") }
        #expect(throws: LuaConversionError("number expected, got no value")) { try Double(luaValue: .nil) }
        #expect(try Double(luaValue: 2) == 2.0)
        #expect(try String(luaValue: "é") == "é")
        #expect(try Bool(luaValue: false) == false)
        #expect(throws: LuaConversionError.self) { try Bool(luaValue: 0) }
        #expect(try [Int](luaValue: [1, 2, 3]) == [1, 2, 3])
        #expect(throws: LuaConversionError("table is not a sequence (keys other than 1…n)")) { try [Int](luaValue: [1: 1, 3: 3]) }
        #expect(try [String: Int](luaValue: ["a": 1]) == ["a": 1])
        #expect(throws: LuaConversionError("table has a number key (string keys expected)")) { try [String: Int](luaValue: [1: 1]) }
        #expect(try Int?(luaValue: .nil) == nil)
        #expect([1, 2].luaValue == [1, 2] && ["k": true].luaValue == ["k": true] && Int?.none.luaValue == .nil)
    }

    @Test func luaValuesAreHashable() {
        let set: Set<LuaValue> = [1, 1, "a", 1.5, [1, 2], [1, 2], .bytes([255])]
        #expect(set.count == 5)
    }

    @Test func codableRoundTripKeepsEveryDistinction() throws {
        let value: LuaValue = [
            1: 2, 2: 2.0, "bin": .bytes([0, 255, 10]), "nested": [true: [1.5: "f"]],
            false: .string("é\u{0}x"), 3: [.nil, 7],
        ]
        let data = try JSONEncoder().encode(value)
        let back = try JSONDecoder().decode(LuaValue.self, from: data)
        #expect(back == value)
        #expect(try JSONDecoder().decode(LuaValue.self, from: JSONEncoder().encode(LuaValue.number(2.0))) == .number(2.0))
        #expect(String(decoding: try JSONEncoder().encode(LuaValue.integer(42)), as: UTF8.self) == #"{"integer":42}"#)
        // Pairs are written in a stable order, so equal tables encode to equal bytes.
        #expect(try JSONEncoder().encode(value) == data)
        #expect(String(decoding: try JSONEncoder().encode(["b": 1, "a": 2] as LuaValue), as: UTF8.self)
                == #"{"table":[[{"string":"a"},{"integer":2}],[{"string":"b"},{"integer":1}]]}"#)
        // Through a Lua state and back.
        let lua = try LuaRuntime()
        lua["v"] = back
        #expect(lua["v"] == value)
    }

    @Test func codableRefusesFunctionsAndMalformedInput() throws {
        let lua = try LuaRuntime()
        let f = try lua.evaluate("print")[0]
        do {
            _ = try JSONEncoder().encode([f])
            Issue.record("expected an encoding error")
        } catch EncodingError.invalidValue(_, let context) {
            #expect(context.debugDescription.contains("cannot encode a Lua function"))
        }
        for bad in [#"{}"#, #"{"integer":1,"string":"x"}"#, #"{"float":1}"#, #"{"table":[[{"nil":null},{"integer":1}]]}"#, #"{"integer":1.5}"#] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(LuaValue.self, from: Data(bad.utf8)) }
        }
    }

    @Test func errorsCarryMessageAndTraceback() throws {
        let lua = try LuaRuntime()
        do {
            try lua.run(string: "local function inner() error('deep') end\ninner()", name: "=job")
            Issue.record("expected an error")
        } catch let e as LuaError {
            #expect(e.message == "job:1: deep")
            #expect("\(e)".hasPrefix("job:1: deep\nstack traceback:\n") && "\(e)".contains("in local 'inner'"))
        }
        #expect(throws: LuaError.syntax(message: "[string \"x = \"]:1: unexpected symbol near <eof>", incompleteInput: true)) {
            try lua.run(string: "x = ", name: "x = ")
        }
    }

    @Test func aRuntimeWithRegisteredFunctionsIsFreed() throws {
        weak var weakRuntime: LuaRuntime?
        let boxes: SwiftFunctionBoxCounter
        do {
            let lua = try LuaRuntime()
            boxes = lua.state.swiftFunctionBoxes     // per runtime: parallel tests never touch it
            let before = boxes.live
            lua.register("host_f") { _ in [] }
            weakRuntime = lua
            #expect(boxes.live == before + 1)
        }
        #expect(weakRuntime == nil)
        #expect(boxes.live == 0)   // lua_close ran and released every box
    }
}
