// LuaRuntime+Command: what a `lua`-style command needs beyond running code — `arg`, `-l`, `-W`, Ctrl-C, stdio.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension LuaRuntime {
    // MARK: identity

    /// The luamp version, e.g. `0.1.0` (also `mp.version`).
    public static var version: String { MPModule.version }

    /// The Lua release luamp is built with, e.g. `Lua 5.4.4` (`LUA_RELEASE`).
    public static var luaRelease: String { String(cString: luamp_lua_release()) }

    /// One line naming both: `luamp 0.1.0 (Lua 5.4.4)` (`luamp -h` starts with it).
    public static var versionLine: String { "luamp \(version) (\(luaRelease))" }

    /// Lua's own version line, `Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio`
    /// (`LUA_COPYRIGHT`). `luamp -v` prints `luamp 0.1.0`, then this line, as `lua -v` ends with it.
    public static var luaCopyright: String { String(cString: luamp_lua_copyright()) }

    // MARK: the command line

    /// Sets the global `arg` the way `lua.c`'s `createargtable` does: `arg[0]` is the script,
    /// `arg[1…]` its arguments and negative indices the interpreter and its options.
    /// - Parameters:
    ///   - commandLine: the whole `argv`, program name first.
    ///   - scriptIndex: the index of the script in `commandLine`; `nil` (no script) puts the
    ///     program name at 0 and the options at 1….
    public func setCommandLine(_ commandLine: [String], scriptIndex: Int?) {
        let script = scriptIndex ?? 0
        let s = state.stack
        s.preservingTop {
            s.newTable(arrayCount: Int32(max(0, commandLine.count - script - 1)), hashCount: Int32(script + 1))
            for (i, a) in commandLine.enumerated() {
                s.push(a)
                s.rawSet(-2, index: Int64(i - script))
            }
            s.setGlobal("arg")
        }
    }

    /// `require(module)` and stores the result in the global `global` (`lua -l global=module`).
    /// - Throws: `LuaError` when the module cannot be loaded or raises.
    public func require(_ module: String, as global: String) throws {
        let s = state.stack
        try s.preservingTop {
            s.getGlobal("require")
            s.push(module)
            try s.pcall(nargs: 1, nresults: 1)
            s.setGlobal(global)
        }
    }

    /// Turns warnings on (`warn("@on")`, the `-W` of `lua`). Wraps `lua_warning`.
    public func enableWarnings() {
        luamp_warning(state.stack.L, "@on", 0)
    }

    /// Runs a script file the way `lua script args…` does, taking the chunk's `...` from the
    /// global `arg` table (so code run before the script may change it), like `lua.c`'s
    /// `handle_script`. A first line starting with `#` is skipped.
    /// - Parameters:
    ///   - path: the script; `nil` reads standard input.
    ///   - passingArguments: pass `arg[1…#arg]` as `...` (false runs the chunk with none, as
    ///     `LUA_INIT=@file` and a piped standard input do).
    /// - Throws: `LuaError.file` if it cannot be read, `.syntax`, or `.runtime` (including
    ///   `'arg' is not a table`).
    public func runScript(_ path: String?, passingArguments: Bool = true) throws {
        _ = try runFile(path, passingArguments: passingArguments, keepingResults: false)
    }

    // MARK: Ctrl-C

    /// Runs `body` with Ctrl-C routed to this runtime: a SIGINT makes the running Lua code
    /// raise `interrupted!` at its next instruction (a hook, as `lua.c` does; the signal handler
    /// never touches the state) and wakes blocking `mp` waits. SIGINT is back to its default
    /// action afterwards. `interruptedBySignal` tells whether a SIGINT arrived meanwhile.
    /// Wraps `luamp_interrupt_target`.
    public func withInterrupts<T>(_ body: () throws -> T) rethrows -> T {
        let seen = luamp_sigint_seen()
        luamp_interrupt_target(state.stack.L)
        defer {
            luamp_interrupt_target(nil)
            sigintArrived = luamp_sigint_seen() != seen
            // A Ctrl-C that came as the body ended leaves its hook armed: disarm it so the next
            // Lua call does not raise a stale `interrupted!`.
            if sigintArrived { lua_sethook(state.stack.L, nil, 0, 0) }
        }
        return try body()
    }

    /// True when the error is the `interrupted!` that Ctrl-C raised during the last
    /// `withInterrupts` (and not, say, a script's own `error("...")` with other text).
    public func isInterruption(_ error: Error) -> Bool {
        guard sigintArrived, let e = error as? LuaError, case .runtime(let message, _) = e else { return false }
        return message.hasSuffix("interrupted!")
    }

    // MARK: the REPL

    /// A point in the life of this process's `mp` work, taken by `workMark()`: the processes
    /// started and pools created afterwards are "since" it.
    public struct WorkMark: Sendable, Equatable {
        let sequence: UInt64
    }

    /// Marks now, so `stopWork(startedSince:)` can later stop what runs from here on. The REPL
    /// takes one before each entry.
    public func workMark() -> WorkMark {
        WorkMark(sequence: MPModule.startSequence(state.stack))
    }

    /// Stops the `mp` work started since `mark` that is still running, leaving older work alone:
    /// pools created since then are terminated (as `pool:terminate()`), and child processes
    /// started since then that have not ended get SIGTERM, then SIGKILL after up to 1 s, and are
    /// reaped (`p:is_alive()` is then false, `p.exitcode` negative). The REPL calls it after an
    /// entry ended by Ctrl-C, so the processes and pools that entry started do not linger.
    /// Never throws; Ctrl-C meanwhile does not cut it short.
    /// - Parameter mark: from `workMark()` in this process.
    public func stopWork(startedSince mark: WorkMark) {
        MPModule.stopCapabilities(state.stack, since: mark.sequence)
    }

    /// Compiles one REPL entry as `lua.c` does. A single line is tried first as
    /// `return <source>` (so an expression prints its values), then as a statement; an entry
    /// continued over several lines is tried as a statement first (`f(\n1)` runs and prints
    /// nothing, as in `lua`), then as an expression (so `{1,\n2}` still prints). Chunk name `=stdin`.
    /// - Returns: the compiled chunk, a function value to pass to `callFormatted`.
    /// - Throws: `LuaError.syntax`; `incompleteInput` is true when more lines could complete it.
    public func compileInteractive(_ source: String) throws -> LuaValue {
        let s = state.stack
        let forms = source.contains("\n") ? [source, "return " + source] : ["return " + source, source]
        return try s.preservingTop {
            var statementError: (message: String, incomplete: Bool)?
            var anyIncomplete = false
            for form in forms {
                do {
                    try s.load(form, name: "=stdin", mode: "t")
                    return .function(state.reference(fromTopOf: s))
                } catch LuaError.syntax(let message, let incomplete) {
                    anyIncomplete = anyIncomplete || incomplete
                    if form == source || statementError == nil { statementError = (message, incomplete) }
                }
            }
            // Report the statement form's message; any form still open is worth another line.
            throw LuaError.syntax(message: statementError?.message ?? "syntax error", incompleteInput: anyIncomplete)
        }
    }

    /// Calls a function (a chunk from `compileInteractive`) and formats each result the way the
    /// REPL shows it (`ValueFormatter`: tables pretty-printed, nested strings quoted).
    /// - Returns: one text per result (empty when the chunk returned nothing).
    /// - Throws: `LuaError.runtime` with the traceback.
    public func callFormatted(_ function: LuaValue, width: Int = 80) throws -> [String] {
        let s = state.stack
        return try s.preservingTop {
            let base = s.top
            try s.push(function)
            try s.pcall(nargs: 0, nresults: LUA_MULTRET)
            guard s.top > base else { return [] }
            var out: [String] = []
            s.checkStack(8)
            for i in (base + 1)...s.top {
                out.append(ValueFormatter(stack: s, width: width).format(at: i))
            }
            return out
        }
    }

    /// Calls a REPL entry (a chunk from `compileInteractive`) and prepares what the REPL shows.
    /// While the global `print` is Lua's own, each result is formatted as `callFormatted` does
    /// (tables pretty-printed). Once a script has replaced it, the results go to that `print`,
    /// as `lua.c` does (`l_print`): then `values` is empty and `printError` is the message
    /// `error calling 'print' (…)` if calling it failed.
    /// - Throws: `LuaError.runtime` (with the traceback) when the entry itself fails.
    public func callForREPL(_ function: LuaValue, width: Int = 80) throws -> (values: [String], printError: String?) {
        let s = state.stack
        return try s.preservingTop {
            let base = s.top
            try s.push(function)
            try s.pcall(nargs: 0, nresults: LUA_MULTRET)
            let n = s.top - base
            guard n > 0 else { return ([], nil) }
            s.checkStack(8)
            s.getGlobal("print")
            s.rawGet(s.registryIndex(), field: Self.standardPrintKey)
            let standard = lua_rawequal(s.L, -1, -2) != 0
            s.pop()
            if standard {
                s.pop()
                return ((base + 1...s.top).map { ValueFormatter(stack: s, width: width).format(at: $0) }, nil)
            }
            s.insert(base + 1)
            guard luamp_pcall(s.L, n, 0, 0) != LUA_OK else { return ([], nil) }
            let why = s.toString(-1) ?? "(error object is a \(s.typeName(at: -1)) value)"
            return ([], "error calling 'print' (\(why))")
        }
    }

    /// Registry key of the standard `print` (remembered when the base library opens).
    static let standardPrintKey = "luamp.print"

    /// `tostring(_G[name])` (running `__tostring`), or `nil` when the global is nil. The REPL
    /// reads its prompts `_PROMPT`/`_PROMPT2` this way.
    public func globalText(_ name: String) -> String? {
        let s = state.stack
        return s.preservingTop {
            if s.getGlobal(name) == .nil { return nil }
            return s.describe(-1)
        }
    }

    /// How many child processes `finish()` will wait for: started by this process, not
    /// daemons, still running (ended ones are reaped on the way). The REPL says so before it
    /// waits at Ctrl-D.
    public var runningChildren: Int {
        MPModule.runningChildren(state.stack)
    }

    // MARK: standard streams through C stdio (the streams Lua's `print` and `io` use)

    /// Writes text to the C `stdout` that `print` uses, so output stays in order.
    public static func writeOutput(_ text: String) { write(text, to: luamp_stdout()) }

    /// Writes text to the C `stderr` and flushes it.
    public static func writeError(_ text: String) {
        write(text, to: luamp_stderr())
        fflush(luamp_stderr())
    }

    /// Flushes the C `stdout`.
    public static func flushOutput() { fflush(luamp_stdout()) }

    /// Reads one line from the C `stdin` (the stream `io.read` uses), without its newline.
    /// - Returns: the line, or nil at end of input or on an error (`errno` says which; a signal
    ///   gives `EINTR`, and the stream stays usable).
    public static func readInputLine() -> String? {
        var buffer: UnsafeMutablePointer<CChar>? = nil
        var size = 0
        defer { free(buffer) }
        let n = getline(&buffer, &size, luamp_stdin())
        guard n >= 0, let b = buffer else {
            let saved = errno
            clearerr(luamp_stdin())
            errno = saved
            return nil
        }
        var bytes = UnsafeRawBufferPointer(start: b, count: n)
        if bytes.last == 10 { bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast()) }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func write(_ text: String, to file: UnsafeMutablePointer<FILE>?) {
        var t = text
        t.withUTF8 { buf in _ = fwrite(buf.baseAddress, 1, buf.count, file) }
    }
}
