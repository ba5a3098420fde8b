// LuaRuntime: the public embedding API — a Lua state with the standard libraries and `mp`.
internal import CLua
internal import LuaMPShims

/// A Lua 5.4 state with the standard libraries and the `mp` module, ready to run scripts.
///
/// Everything the `luamp` command does goes through this type. Not thread-safe: use a
/// runtime from the thread that created it, and fork (start processes or pools) only while
/// the process has that one thread.
public final class LuaRuntime {
    /// How a runtime is set up.
    public struct Options: Sendable {
        /// Ignore `LUA_PATH*`/`LUA_CPATH*` (the `-E` of `lua`); `LUA_INIT` is the caller's business.
        public var ignoreEnvironment: Bool
        /// Open Lua's standard libraries (those in `libraries`). `false` opens none.
        public var openStandardLibraries: Bool
        /// Which standard libraries to open when `openStandardLibraries` is true (all by default).
        public var libraries: LuaLibraries
        /// Install the `mp` module (`require "mp"` and the global `mp`).
        public var installMP: Bool
        /// Templates put in front of `package.path` (`"/app/lua/?.lua"`), searched first.
        public var packagePath: [String]
        /// Templates put in front of `package.cpath` (`"/app/lib/?.so"`), searched first.
        public var packageCPath: [String]

        /// Options with every default: all standard libraries and `mp`, environment honoured.
        /// - Parameters:
        ///   - ignoreEnvironment: ignore `LUA_PATH*`/`LUA_CPATH*`.
        ///   - openStandardLibraries: open the libraries in `libraries`.
        ///   - libraries: which standard libraries (default: all of them).
        ///   - installMP: install the `mp` module.
        ///   - packagePath: `?`-templates searched before `package.path`'s defaults.
        ///   - packageCPath: `?`-templates searched before `package.cpath`'s defaults.
        public init(ignoreEnvironment: Bool = false, openStandardLibraries: Bool = true,
                    libraries: LuaLibraries = .all, installMP: Bool = true,
                    packagePath: [String] = [], packageCPath: [String] = []) {
            self.ignoreEnvironment = ignoreEnvironment
            self.openStandardLibraries = openStandardLibraries
            self.libraries = libraries
            self.installMP = installMP
            self.packagePath = packagePath
            self.packageCPath = packageCPath
        }
    }

    let state: LuaState
    /// Whether a SIGINT arrived during the last `withInterrupts` (LuaRuntime+Command.swift).
    var sigintArrived = false

    /// Creates a runtime.
    /// - Throws: `LuaError` if the state cannot be created or a library fails to open.
    public init(options: Options = Options()) throws {
        state = try LuaState()
        let s = state.stack
        if options.ignoreEnvironment {
            s.push(true)
            s.rawSet(s.registryIndex(), field: "LUA_NOENV")
        }
        if options.openStandardLibraries {
            try LuaLibraries.open(options.libraries, on: s)
            LuaLibraries.prependSearchPaths(path: options.packagePath, cpath: options.packageCPath, on: s)
        }
        if options.installMP { MPModule.install(s) }
    }

    // MARK: running code

    /// Runs a chunk of Lua source.
    /// - Parameters:
    ///   - string: the source.
    ///   - name: the chunk name used in messages (`=(command line)`, `@file.lua`, …).
    ///   - arguments: passed to the chunk as `...`.
    /// - Returns: the chunk's return values.
    /// - Throws: `LuaError.syntax` or `.runtime` (message and traceback).
    @discardableResult
    public func run(string: String, name: String = "=(string)", arguments: [LuaValue] = []) throws -> [LuaValue] {
        let s = state.stack
        return try s.preservingTop {
            try s.load(string, name: name)
            return try callLoaded(s, arguments)
        }
    }

    /// Runs a script file the way `lua script args…` does: the global `arg` gets the script at
    /// index 0 and the arguments at 1…n, and the chunk receives the arguments as `...`.
    /// A first line starting with `#` is skipped.
    /// - Parameters:
    ///   - file: the script's path; `nil` reads standard input.
    ///   - arguments: the script's arguments.
    /// - Returns: the chunk's return values.
    /// - Throws: `LuaError.file` if it cannot be read, `.syntax` or `.runtime`.
    @discardableResult
    public func run(file: String?, arguments: [String] = []) throws -> [LuaValue] {
        var argTable = LuaTable()
        argTable[0] = .string(file ?? "-")
        for (i, a) in arguments.enumerated() { argTable[i + 1] = .string(a) }
        self["arg"] = .table(argTable)
        return try runFile(file, passingArguments: true, keepingResults: true)
    }

    /// The one script runner, behind `run(file:arguments:)` and the command's `runScript`: loads
    /// the file (`luaL_loadfilex` skips a first line starting with `#`, as `lua.c` relies on) and
    /// calls it with `arg[1…#arg]` as `...`, like `lua.c`'s `handle_script`.
    /// - Parameters:
    ///   - file: the script; `nil` reads standard input.
    ///   - passingArguments: pass `arg[1…#arg]` as `...` (false: none).
    ///   - keepingResults: return the chunk's results as values (the command discards them, so a
    ///     script returning something `LuaValue` cannot hold, such as a cyclic table, still succeeds).
    /// - Throws: `LuaError.file` if it cannot be read, `.syntax`, or `.runtime` (including
    ///   `'arg' is not a table`).
    func runFile(_ file: String?, passingArguments: Bool, keepingResults: Bool) throws -> [LuaValue] {
        let s = state.stack
        return try s.preservingTop {
            let status = luaL_loadfilex(s.L, file, nil)
            if status != LUA_OK { throw s.popError(status: status) }
            let base = s.top - 1
            var n: Int32 = 0
            if passingArguments {
                guard s.getGlobal("arg") == .table else {
                    throw LuaError.runtime(message: "'arg' is not a table", traceback: "")
                }
                let t = s.top
                let count = s.rawLength(t)
                guard count < 1_000_000, s.checkStack(Int32(count) + 3) else {
                    throw LuaError.runtime(message: "too many arguments to script", traceback: "")
                }
                for i in 0..<count { s.rawGet(t, index: i + 1) }
                s.remove(t)
                n = Int32(count)
            }
            try s.pcall(nargs: n, nresults: keepingResults ? LUA_MULTRET : 0)
            return try results(s, above: base)
        }
    }

    /// Evaluates Lua code and returns its values: `evaluate("6 * 7")` and
    /// `evaluate("return 6 * 7, 'x'")` both work (an expression is tried first, as the REPL does).
    /// - Throws: `LuaError`.
    public func evaluate(_ code: String) throws -> [LuaValue] {
        let s = state.stack
        return try s.preservingTop {
            do {
                try s.load("return " + code, name: "=(evaluate)")
            } catch LuaError.syntax {
                try s.load(code, name: "=(evaluate)")
            }
            return try callLoaded(s, [])
        }
    }

    /// Calls a Lua function value with arguments.
    /// - Throws: `LuaRaise` if `function` is not callable, `LuaError.runtime` for its errors.
    public func call(_ function: LuaValue, _ arguments: [LuaValue] = []) throws -> [LuaValue] {
        let s = state.stack
        return try s.preservingTop {
            try s.push(function)
            return try callLoaded(s, arguments)
        }
    }

    /// Calls the global function `name`.
    public func call(global name: String, _ arguments: [LuaValue] = []) throws -> [LuaValue] {
        try call(self[name], arguments)
    }

    /// Reads or writes a global variable (raw access, no metamethods). Assigning a value Lua
    /// cannot hold — a table with a nil or NaN key, or nested more than 200 levels — leaves
    /// the global unchanged: `setGlobal(_:_:)` throws instead, for values from outside.
    public subscript(name: String) -> LuaValue {
        get {
            let s = state.stack
            return s.preservingTop {
                s.getGlobal(name)
                return (try? s.value(at: -1, state: state)) ?? .nil
            }
        }
        set {
            try? setGlobalValue(name, newValue)
        }
    }

    /// Sets the global `name` to `value` (raw access).
    /// - Throws: `LuaRaise` when Lua cannot hold the value (a table with a nil or NaN key, or
    ///   nested more than 200 levels); the global is then unchanged.
    func setGlobalValue(_ name: String, _ value: LuaValue) throws {
        let s = state.stack
        try s.push(value)
        s.setGlobal(name)
    }

    /// Makes a Swift function callable from Lua as the global `name`. It receives the Lua
    /// arguments as values and returns its results; throwing raises a Lua error with the
    /// error's description (a `LuaRaise` gives exactly its message). Forked processes and
    /// pool workers inherit it.
    public func register(_ name: String, _ function: @escaping ([LuaValue]) throws -> [LuaValue]) {
        let s = state.stack
        // unowned: the closure lives inside the Lua state that `state` owns (a strong
        // capture would be a cycle that never closes the state).
        s.pushFunction(name: name) { [unowned(unsafe) state = self.state] stack in
            var args: [LuaValue] = []
            let n = stack.top
            args.reserveCapacity(Int(n))
            for i in 1...max(n, 1) where i <= n { args.append(try stack.value(at: i, state: state)) }
            let results = try function(args)
            try stack.ensureStack(results.count)
            for r in results { try stack.push(r) }
            return Int32(results.count)
        }
        s.setGlobal(name)
    }

    /// Ends a script the way Python ends its main module: this runtime's non-daemon child
    /// processes are joined, its daemon children terminated and its pools left open terminated
    /// (other runtimes of the process keep theirs). `luamp` calls it when
    /// the main chunk ends (also after an error); embedders call it when their script is done.
    ///
    /// - Parameter interrupted: the script ended by Ctrl-C: children and pools are stopped
    ///   rather than waited for (as a second Ctrl-C would in Python).
    public func finish(interrupted: Bool = false) {
        if interrupted { luamp_set_interrupt_pending() }
        MPModule.finishCapabilities(state.stack)
    }

    /// Keeps this runtime's pools moving while the app waits outside Lua (for input, on its own
    /// event loop): runs one round of the pool service if one is due (reads results, sends
    /// queued tasks, hands a dead worker's queued tasks to the others; never runs a callback,
    /// never forks). Cheap when nothing is due; call it whenever the app wakes, at least every
    /// few milliseconds while pools have work (`poolsHaveWork`). The `luamp` REPL calls it while
    /// it waits at the prompt. Inside Lua and mp calls the runtime does this by itself.
    public func serviceWhileIdle() {
        luamp_service_idle(state.stack.L)
    }

    /// True while a pool of this runtime has work outstanding (the service's timer runs, and
    /// its signal wakes a blocked `poll` every 5 ms).
    public var poolsHaveWork: Bool { luamp_service_is_on() != 0 }

    // MARK: internals

    /// Calls the function on top of the stack with `args`, returning every result.
    private func callLoaded(_ s: LuaStack, _ args: [LuaValue]) throws -> [LuaValue] {
        let base = s.top - 1
        try s.ensureStack(args.count)
        for a in args { try s.push(a) }
        try s.pcall(nargs: Int32(args.count), nresults: LUA_MULTRET)
        return try results(s, above: base)
    }

    /// The values above stack slot `base`, converted.
    private func results(_ s: LuaStack, above base: Int32) throws -> [LuaValue] {
        var out: [LuaValue] = []
        if s.top > base {
            for i in (base + 1)...s.top { out.append(try s.value(at: i, state: state)) }
        }
        return out
    }
}

@available(*, unavailable, message: "a Lua state belongs to one thread")
extension LuaRuntime: Sendable {}

extension LuaStack {
    /// Pushes a plain C function. Stack: [-0, +1].
    func push(cFunction f: @convention(c) (OpaquePointer?) -> Int32) {
        lua_pushcclosure(L, f, 0)
    }
}
