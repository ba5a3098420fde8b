// REPL: the interactive loop — read a chunk (continuing while incomplete), run it, show its values.
import LuaMP
import LuaMPShims
#if canImport(Glibc)
import Glibc
#endif

/// `lua.c`'s `doREPL`: prompts from `_PROMPT`/`_PROMPT2`, expressions print their values
/// (pretty-printed), statements run, incomplete chunks continue on the next line, Ctrl-C at the
/// prompt drops the chunk, Ctrl-C while code runs raises `interrupted!`, stops the processes
/// and pools that chunk started (`stopWork`) and returns here, Ctrl-D (end of input) leaves.
/// Errors print without the program name, as in `lua`.
struct REPL {
    let lua: LuaRuntime

    /// Runs until end of input. At the end, when child processes are still running (they are
    /// joined, as at the end of a script), it says so and waits with Ctrl-C routed to stopping
    /// them. - Returns: 0, or 130 when Ctrl-C stopped those children.
    func run() -> Int32 {
        let editor = LineEditor(terminal: isatty(0) != 0, historyPath: Self.historyPath())
        defer { editor.close() }
        editor.idle = { [lua] in lua.serviceWhileIdle() }   // pools go on while the prompt waits
        while true {
            guard let chunk = readChunk(editor) else { break }
            guard let function = chunk.function else { continue }
            editor.remember(chunk.source)
            if editor.takePendingInterrupt() {   // Ctrl-C pressed as the line was entered
                LuaRuntime.writeError("interrupted!\n")
                continue
            }
            let mark = lua.workMark()
            do {
                signal(SIGTSTP, SIG_DFL)   // Ctrl-Z while code runs stops luamp as usual
                let shown = try lua.withInterrupts { try lua.callForREPL(function, width: Self.terminalWidth()) }
                editor.installPromptHandlers()
                if !shown.values.isEmpty { LuaRuntime.writeOutput(shown.values.joined(separator: "\t") + "\n") }
                if let e = shown.printError {   // a replaced `print` failed, as lua.c reports it
                    LuaRuntime.flushOutput()
                    LuaRuntime.writeError(e + "\n")
                }
            } catch {
                editor.installPromptHandlers()
                LuaRuntime.flushOutput()
                LuaRuntime.writeError("\(error)\n")
                // Ctrl-C: what this entry started stops with it; earlier entries' work goes on.
                if lua.isInterruption(error) { lua.stopWork(startedSince: mark) }
            }
            LuaRuntime.flushOutput()
        }
        LuaRuntime.writeOutput("\n")   // leave the terminal on a fresh line, as lua does
        LuaRuntime.flushOutput()
        return waitForChildren()
    }

    /// Ctrl-D with processes still running: `waiting for N children (Ctrl-C to stop them)`, then
    /// the usual end-of-script join, during which Ctrl-C stops them (SIGTERM, then SIGKILL).
    private func waitForChildren() -> Int32 {
        let n = lua.runningChildren
        guard n > 0 else { return 0 }
        let seen = luamp_sigint_seen()
        lua.withInterrupts {
            // Said once Ctrl-C interrupts the join: said before, a Ctrl-C right after it went
            // to the prompt's handler and was lost, and luamp waited for the child anyway.
            LuaRuntime.writeError(n == 1 ? "waiting for 1 child (Ctrl-C to stop it)\n"
                                         : "waiting for \(n) children (Ctrl-C to stop them)\n")
            lua.finish()
        }
        guard luamp_sigint_seen() != seen else { return 0 }
        LuaRuntime.writeError("interrupted!\n")
        return Interpreter.interruptedStatus
    }

    /// A compiled entry, or (function nil) one that was dropped or did not compile.
    private struct Chunk {
        var source: String
        var function: LuaValue?
    }

    /// Reads lines until they form a chunk. Returns nil at end of input.
    private func readChunk(_ editor: LineEditor) -> Chunk? {
        var source: String
        switch editor.readLine(prompt: prompt("_PROMPT", "> ")) {
        case .endOfInput: return nil
        case .interrupted: return Chunk(source: "", function: nil)
        // A first line starting with '=' means `return` (lua.c keeps this from Lua 5.2: `=a`).
        case .line(let l): source = l.hasPrefix("=") ? "return " + l.dropFirst() : l
        }
        while true {
            do {
                return Chunk(source: source, function: try lua.compileInteractive(source))
            } catch LuaError.syntax(let message, true) {
                switch editor.readLine(prompt: prompt("_PROMPT2", ">> ")) {
                case .line(let more): source += "\n" + more
                case .interrupted: return Chunk(source: "", function: nil)
                case .endOfInput:
                    LuaRuntime.writeError(message + "\n")
                    return nil
                }
            } catch {
                editor.remember(source)
                LuaRuntime.flushOutput()
                LuaRuntime.writeError("\(error)\n")
                return Chunk(source: source, function: nil)
            }
        }
    }

    private func prompt(_ global: String, _ fallback: String) -> String {
        lua.globalText(global) ?? fallback
    }

    /// `$HOME/.luamp_history`, or nil without a home.
    static func historyPath() -> String? {
        guard let h = getenv("HOME") else { return nil }
        let home = String(cString: h)
        return home.isEmpty ? nil : home + "/.luamp_history"
    }

    /// The terminal's width for pretty-printing (80 when unknown).
    static func terminalWidth() -> Int {
        var ws = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col >= 20 { return Int(ws.ws_col) }
        return 80
    }
}
