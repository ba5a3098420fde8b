// The Swift Lua layer in-process: values, calls, errors, and Swift callbacks that raise.
import Testing
@testable import LuaMP

@Suite struct LuaLayerTests {
    @Test func evaluateReturnsValues() throws {
        let lua = try LuaRuntime()
        #expect(try lua.evaluate("return 6 * 7, 'x'") == [.integer(42), .string("x")])
        #expect(try lua.evaluate("1.5") == [.number(1.5)])
    }
}
