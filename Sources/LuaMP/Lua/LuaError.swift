// The one Lua error type, plus the errors Swift callbacks throw to raise Lua errors.

/// An error that came out of Lua: a chunk that does not compile, or a runtime error with its traceback.
public enum LuaError: Error, Equatable, CustomStringConvertible {
    /// A chunk failed to compile. `incompleteInput` is true when more input could complete it
    /// (the message ends in `<eof>`), which the REPL uses to continue a chunk on the next line.
    case syntax(message: String, incompleteInput: Bool)
    /// A runtime error: Lua's message and the traceback from the point it was raised.
    case runtime(message: String, traceback: String)
    /// Lua ran out of memory.
    case memory(String)
    /// A file could not be opened or read.
    case file(String)

    /// The message without the traceback.
    public var message: String {
        switch self {
        case .syntax(let m, _), .runtime(let m, _), .memory(let m), .file(let m): return m
        }
    }

    /// Message and traceback, the way `lua` prints an uncaught error.
    public var description: String {
        switch self {
        case .runtime(let m, let tb) where !tb.isEmpty: return m + "\n" + tb
        default: return message
        }
    }
}

extension LuaError {
    /// Splits `message\nstack traceback:\n…` (what the message handler makes) into a runtime error.
    static func splitTraceback(_ text: String) -> LuaError {
        let marker = Array("\nstack traceback:\n".utf8)
        let bytes = Array(text.utf8)
        if bytes.count >= marker.count {
            for i in 0...(bytes.count - marker.count) where bytes[i] == marker[0] {
                if Array(bytes[i..<(i + marker.count)]) == marker {
                    return .runtime(message: String(decoding: bytes[..<i], as: UTF8.self),
                                    traceback: String(decoding: bytes[(i + 1)...], as: UTF8.self))
                }
            }
        }
        return .runtime(message: text, traceback: "")
    }
}

/// Thrown by Swift code that Lua called: becomes an ordinary Lua error with this message.
public struct LuaRaise: Error, CustomStringConvertible {
    /// The Lua error message.
    public let message: String
    /// An error that raises `message` in Lua.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Thrown by Swift code that Lua called: becomes `bad argument #index to 'name' (message)`.
/// The function name is filled in by `luaL_argerror` from Lua's debug information.
public struct LuaArgumentError: Error, CustomStringConvertible {
    /// The 1-based argument position.
    public let index: Int32
    /// What is wrong, e.g. `number expected, got table`.
    public let message: String
    /// An argument error for argument `index`.
    public init(_ index: Int32, _ message: String) { self.index = index; self.message = message }
    public var description: String { "bad argument #\(index) (\(message))" }
}

/// An error that raises a Lua value of its own (a table with `kind`, say) instead of a string.
protocol LuaValueError: Error {
    /// Pushes the error value. Stack: [-0, +1].
    func pushError(onto stack: LuaStack)
    /// True when the error stands for running out of memory: it is then raised as Lua's own
    /// memory error (`not enough memory`, catchable, no value pushed), like `LuaError.memory`.
    var isMemoryError: Bool { get }
}

extension LuaValueError {
    var isMemoryError: Bool { false }
}
