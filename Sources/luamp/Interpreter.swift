// Interpreter: runs a parsed command line the way lua.c's pmain/runargs/handle_script do.
import LuaMP
#if canImport(Glibc)
import Glibc
#endif

/// Runs one invocation of `luamp` and returns its exit status.
struct Interpreter {
    let options: CommandLineOptions

    /// Exit status of an uncaught Ctrl-C (128 + SIGINT, what shells report).
    static let interruptedStatus: Int32 = 130

    /// Everything `lua` does, in its order: usage errors, `-v`, the state (with `-E` applied
    /// before the libraries open), `arg`, `LUA_INIT`, `-e`/`-l`/`-W`, the script, then the REPL
    /// or standard input. The runtime is released (closing the state, running finalizers)
    /// before this returns.
    func run() -> Int32 {
        let progname = options.programName
        if options.help {
            LuaRuntime.writeOutput(LuaRuntime.versionLine + "\n" + CommandLineOptions.usage(progname))
            return 0
        }
        if let problem = options.problem {
            LuaRuntime.writeError("\(progname): \(problem.message)\n" + CommandLineOptions.usage(progname))
            return 1
        }
        if let t = options.traceCommand, access("trace", F_OK) != 0 { return traceCommand(t, progname) }
        if options.showVersion { printVersion() }
        Observability.traceFile = options.traceFile
        Observability.traceHTML = options.traceHTML
        Observability.progress = options.progress
        Observability.labelOutput = options.labelOutput
        let lua: LuaRuntime
        do {
            lua = try LuaRuntime(options: .init(ignoreEnvironment: options.ignoreEnvironment))
        } catch {
            return report(error, progname: progname)
        }
        let status = runAll(lua, progname: progname)
        lua.finish(interrupted: status == 130)
        LuaRuntime.flushOutput()
        return status
    }

    private func runAll(_ lua: LuaRuntime, progname: String) -> Int32 {
        lua.setCommandLine(options.arguments, scriptIndex: options.scriptIndex)
        do {
            if !options.ignoreEnvironment { try runInit(lua) }
            for action in options.actions {
                switch action {
                case .execute(let code):
                    try lua.withInterrupts { _ = try lua.run(string: code, name: "=(command line)") }
                case .require(let module, let global):
                    try lua.withInterrupts { try lua.require(module, as: global) }
                case .warningsOn:
                    lua.enableWarnings()
                }
            }
            if options.scriptIndex != nil {
                try lua.withInterrupts { try lua.runScript(options.scriptPath) }
            }
        } catch {
            return lua.isInterruption(error) ? reportInterrupt(error, progname) : report(error, progname: progname)
        }
        if options.interactive {
            return REPL(lua: lua).run()
        } else if options.scriptIndex == nil && !options.hasExecute && !options.showVersion {
            if isatty(0) != 0 {
                printVersion()
                return REPL(lua: lua).run()
            } else {
                do {
                    try lua.withInterrupts { try lua.runScript(nil, passingArguments: false) }
                } catch {
                    return lua.isInterruption(error) ? reportInterrupt(error, progname) : report(error, progname: progname)
                }
            }
        }
        return 0
    }

    /// `luamp trace FILE.json [-o FILE.html]`: the HTML timeline of a trace (FILE.html by default).
    private func traceCommand(_ t: CommandLineOptions.TraceCommand, _ progname: String) -> Int32 {
        var input = t.input
        while input.hasSuffix("/") && input.count > 1 { input.removeLast() }
        var st = stat()
        let isDir = stat(input, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
        if isDir, let r = input.ranges(of: ".parts.").last {
            // The part files of a run killed before it merged them: FILE.json.parts.XXXXXX → FILE.json
            let json = String(input[..<r.lowerBound])
            do { try Observability.recoverTrace(parts: input, into: json) } catch {
                LuaRuntime.writeError("\(progname): \(error)\n")
                return 1
            }
            LuaRuntime.writeError("\(progname): recovered \(json)\n")
            input = json
        }
        var out = t.output
        if out == nil {
            out = (input.hasSuffix(".json") ? String(input.dropLast(5)) : input) + ".html"
        }
        do {
            try Observability.writeHTML(trace: input, to: out!)
        } catch {
            LuaRuntime.writeError("\(progname): \(error)\n")
            return 1
        }
        LuaRuntime.writeError("\(progname): wrote \(out!)\n")
        return 0
    }

    /// `LUA_INIT_5_4`, else `LUA_INIT`: Lua code, or `@file` to run a file (lua.c's handle_luainit).
    private func runInit(_ lua: LuaRuntime) throws {
        var name = "=LUA_INIT_5_4"
        var value = getenv("LUA_INIT_5_4")
        if value == nil {
            name = "=LUA_INIT"
            value = getenv("LUA_INIT")
        }
        guard let v = value else { return }
        let code = String(cString: v)
        if code.hasPrefix("@") {
            try lua.withInterrupts { try lua.runScript(String(code.dropFirst()), passingArguments: false) }
        } else {
            try lua.withInterrupts { _ = try lua.run(string: code, name: name) }
        }
    }

    /// `luamp 0.1.0`, then Lua's own line (`Lua 5.4.4  Copyright (C) 1994-2022 Lua.org, PUC-Rio`)
    /// as `lua.c`'s print_version ends its output with it.
    private func printVersion() {
        LuaRuntime.writeOutput("luamp \(LuaRuntime.version)\n" + LuaRuntime.luaCopyright + "\n")
        LuaRuntime.flushOutput()
    }

    /// `progname: message` and the traceback on stderr (lua.c's `l_message`); returns 1.
    private func report(_ error: Error, progname: String) -> Int32 {
        LuaRuntime.flushOutput()
        LuaRuntime.writeError("\(progname): \(error)\n")
        return 1
    }

    private func reportInterrupt(_ error: Error, _ progname: String) -> Int32 {
        _ = report(error, progname: progname)
        return Self.interruptedStatus
    }
}
