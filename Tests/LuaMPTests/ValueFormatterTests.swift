// The REPL's value display through the public API (compileInteractive + callFormatted).
import Testing
import LuaMP

@Suite struct ValueFormatterTests {
    private func show(_ code: String, width: Int = 80) throws -> [String] {
        let lua = try LuaRuntime()
        return try lua.callFormatted(lua.compileInteractive(code), width: width)
    }

    @Test func scalarsPrintLikeTostring() throws {
        #expect(try show("1, 2.5, 1e100, true, nil, 'text'") == ["1", "2.5", "1e+100", "true", "nil", "text"])
        #expect(try show("x = 1") == [])
    }

    @Test func tablesShowSequenceThenSortedKeys() throws {
        #expect(try show("{3, 4, name = 'w', b = {x = 1}, [10] = true, [1.5] = 0}") ==
                ["{3, 4, [1.5] = 0, [10] = true, b = {x = 1}, name = \"w\"}"])
        #expect(try show("{}") == ["{}"])
        #expect(try show("{['a b'] = 1, ['end'] = 2, [false] = 3}") == ["{[\"a b\"] = 1, [\"end\"] = 2, [false] = 3}"])
    }

    @Test func nestedStringsAreQuotedAndEscaped() throws {
        #expect(try show("{'a\\nb', 'q\"', '\\0001'}") == ["{\"a\\nb\", \"q\\\"\", \"\\0001\"}"])
    }

    @Test func cyclesAreMarked() throws {
        let out = try show("local t = {1}; t.me = t; return t")
        #expect(out.count == 1 && out[0].hasPrefix("{1, me = <cycle: table: 0x"))
    }

    @Test func deepTablesStopAtFourLevels() throws {
        #expect(try show("{{{{{1}}}}}") == ["{{{{{…}}}}}"])
    }

    @Test func longTablesAreElidedAndBrokenIntoLines() throws {
        let out = try show("local t = {} for i = 1, 60 do t[i] = i end return t")[0]
        #expect(out.hasPrefix("{\n  1,\n  2,\n"))
        #expect(out.hasSuffix("  50,\n  … (10 more)\n}"))
    }

    @Test func tostringMetamethodsAreUsed() throws {
        #expect(try show("setmetatable({}, {__tostring = function() return 'P' end})") == ["P"])
        #expect(try show("{setmetatable({}, {__tostring = function() return 'P' end})}") == ["{P}"])
    }

    @Test func incompleteInputIsFlagged() throws {
        let lua = try LuaRuntime()
        #expect(throws: LuaError.self) { try lua.compileInteractive("function f()") }
        do {
            _ = try lua.compileInteractive("function f()")
        } catch LuaError.syntax(_, let incomplete) {
            #expect(incomplete)
        }
        do {
            _ = try lua.compileInteractive("x = = 1")
        } catch LuaError.syntax(let message, let incomplete) {
            #expect(!incomplete && message.contains("unexpected symbol"))
        }
    }
}
