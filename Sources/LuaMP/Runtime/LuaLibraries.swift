// LuaLibraries: which of Lua's standard libraries a runtime opens, and the module search paths.
internal import CLua
internal import LuaMPShims

/// A set of Lua's standard libraries, for `LuaRuntime.Options.libraries`.
///
/// ```swift
/// // A runtime without file and OS access (scripts still get `mp`):
/// let lua = try LuaRuntime(options: .init(libraries: [.base, .string, .table, .math, .utf8, .coroutine, .package]))
/// ```
public struct LuaLibraries: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `print`, `pairs`, `pcall`, `load`… (the global table `_G`).
    public static let base = LuaLibraries(rawValue: 1 << 0)
    /// `require` and `package`.
    public static let package = LuaLibraries(rawValue: 1 << 1)
    /// `coroutine`.
    public static let coroutine = LuaLibraries(rawValue: 1 << 2)
    /// `table`.
    public static let table = LuaLibraries(rawValue: 1 << 3)
    /// `io` (files, `io.popen`).
    public static let io = LuaLibraries(rawValue: 1 << 4)
    /// `os` (`os.execute`, `os.remove`, `os.exit`…).
    public static let os = LuaLibraries(rawValue: 1 << 5)
    /// `string`.
    public static let string = LuaLibraries(rawValue: 1 << 6)
    /// `math`.
    public static let math = LuaLibraries(rawValue: 1 << 7)
    /// `utf8`.
    public static let utf8 = LuaLibraries(rawValue: 1 << 8)
    /// `debug`.
    public static let debug = LuaLibraries(rawValue: 1 << 9)

    /// Every standard library (what `luaL_openlibs` opens).
    public static let all: LuaLibraries = [.base, .package, .coroutine, .table, .io, .os, .string, .math, .utf8, .debug]

    /// The libraries in `luaL_openlibs`'s order: global name and opener.
    private static let openers: [(LuaLibraries, String, @convention(c) (OpaquePointer?) -> Int32)] = [
        (.base, "_G", luaopen_base), (.package, "package", luaopen_package),
        (.coroutine, "coroutine", luaopen_coroutine), (.table, "table", luaopen_table),
        (.io, "io", luaopen_io), (.os, "os", luaopen_os), (.string, "string", luaopen_string),
        (.math, "math", luaopen_math), (.utf8, "utf8", luaopen_utf8), (.debug, "debug", luaopen_debug),
    ]

    /// Opens `libraries` the way `luaL_requiref(L, name, open, 1)` does — each opener runs
    /// under `lua_pcall`, its result goes to `package.loaded[name]` and the global `name` — but
    /// with raw table access only, so no Lua error can jump over this Swift frame.
    /// Stack: [-0, +0].
    /// - Throws: `LuaError` when an opener fails (out of memory).
    static func open(_ libraries: LuaLibraries, on s: LuaStack) throws {
        try s.preservingTop {
            // registry._LOADED, created as luaL_getsubtable would.
            if s.rawGet(s.registryIndex(), field: "_LOADED") != .table {
                s.pop()
                s.newTable()
                s.pushValue(-1)
                s.rawSet(s.registryIndex(), field: "_LOADED")
            }
            let loaded = s.top
            for (library, name, opener) in openers where libraries.contains(library) {
                s.push(cFunction: opener)
                s.push(name)
                try s.pcall(nargs: 1, nresults: 1)
                s.pushValue(-1)
                s.rawSet(loaded, field: name)
                s.setGlobal(name)
                if library == .base {   // the REPL pretty-prints while `print` is this one
                    s.getGlobal("print")
                    s.rawSet(s.registryIndex(), field: LuaRuntime.standardPrintKey)
                }
            }
        }
    }

    /// Puts `path`/`cpath` templates in front of `package.path`/`package.cpath` (when the
    /// `package` library is open). Stack: [-0, +0].
    static func prependSearchPaths(path: [String], cpath: [String], on s: LuaStack) {
        s.preservingTop {
            guard !(path.isEmpty && cpath.isEmpty), s.getGlobal("package") == .table else { return }
            let package = s.top
            for (field, extra) in [("path", path), ("cpath", cpath)] where !extra.isEmpty {
                let current = s.rawGet(package, field: field) == .string ? s.toString(-1) ?? "" : ""
                s.pop()
                s.push((extra + (current.isEmpty ? [] : [current])).joined(separator: ";"))
                s.rawSet(package, field: field)
            }
        }
    }
}
