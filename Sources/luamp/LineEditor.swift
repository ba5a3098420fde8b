// LineEditor: reads REPL lines — GNU readline (callback mode, history) on a terminal, plain stdin otherwise.
import CReadline
import LuaMP
import LuaMPShims
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What reading a line gave.
enum LineInput: Equatable {
    case line(String)
    /// Ctrl-C at the prompt: the line is dropped.
    case interrupted
    /// Ctrl-D on an empty line, or the end of standard input.
    case endOfInput
}

/// The line readline's callback delivered, and whether it delivered one (written by the
/// callback, never by a signal handler: SIGINT/SIGWINCH/SIGTSTP at the prompt only set C flags,
/// see `luamp_prompt.h`).
/// The line readline handed over, and whether it did (`line` nil: end of input). One value
/// behind a mutex: readline calls back without a context pointer.
private let delivery = Mutex<(line: String?, done: Bool)>((nil, false))

/// readline's line handler: keeps the line and removes the handler (so readline does not show
/// the prompt again by itself).
private func onReadlineLine(_ line: UnsafeMutablePointer<CChar>?) {
    let text = line.map { String(cString: $0) }
    free(line)
    delivery.withLock { $0 = (text, true) }
    rl_callback_handler_remove()
}

/// Reads lines for the REPL. On a terminal it uses GNU readline's callback interface and waits
/// with `poll`, so Ctrl-C (a SIGINT handler without `SA_RESTART`) wakes it and drops the line
/// cleanly; history persists in `historyPath`. Otherwise it reads standard input plainly,
/// printing the prompt and echoing each line, as Debian's `lua5.4` (readline) does.
final class LineEditor {
    let usesReadline: Bool
    let historyPath: String?
    /// Called whenever the terminal prompt wakes without a key (the runtime's pool service).
    var idle: (() -> Void)?

    /// - Parameters:
    ///   - terminal: standard input is a terminal (use readline).
    ///   - historyPath: where history is kept (`$HOME/.luamp_history`); nil keeps none.
    init(terminal: Bool, historyPath: String?) {
        usesReadline = terminal
        self.historyPath = historyPath
        delivery.withLock { $0.done = false }
        if terminal {
            luamp_rl_set_name("luamp")
            luamp_rl_disable_signal_handlers()
            rl_bind_key(9, rl_insert)   // Tab inserts itself instead of completing file names
            using_history()
            stifle_history(1000)
            luamp_rl_keep_multiline_history()   // a `function … end` comes back whole after a restart
            if let p = historyPath {
                read_history(p)
                luamp_rl_stamp_untimed_entries()
            }
        }
    }

    /// Shows `prompt` and reads one line.
    func readLine(prompt: String) -> LineInput {
        installPromptHandlers()
        return usesReadline ? readWithReadline(prompt) : readPlain(prompt)
    }

    /// Records an entered chunk (all its lines, as one entry) in the history file.
    func remember(_ entry: String) {
        guard usesReadline, !entry.isEmpty else { return }
        add_history(entry)
        if let p = historyPath { write_history(p) }
    }

    // MARK: readline

    private func readWithReadline(_ prompt: String) -> LineInput {
        delivery.withLock { $0.done = false }
        _ = luamp_prompt_take(LUAMP_PROMPT_SIGINT)
        rl_callback_handler_install(prompt, onReadlineLine)
        while !delivery.withLock({ $0.done }) {
            if luamp_prompt_take(LUAMP_PROMPT_SIGINT) != 0 {
                luamp_rl_point_to_end()
                rl_redisplay()
                rl_free_line_state()
                rl_callback_sigcleanup()
                rl_replace_line("", 0)
                rl_callback_handler_remove()
                LuaRuntime.writeOutput("^C\n")
                LuaRuntime.flushOutput()
                return .interrupted
            }
            if luamp_prompt_take(LUAMP_PROMPT_SIGWINCH) != 0 { rl_resize_terminal() }
            if luamp_prompt_take(LUAMP_PROMPT_SIGTSTP) != 0 { suspend() }
            var fds = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            // While pools have work, their service's timer wakes this poll (EINTR) every 5 ms:
            // `idle` lets the pools of earlier lines go on while the prompt waits.
            let r = poll(&fds, 1, -1)
            idle?()
            if r < 0 { continue }   // EINTR: look at the flags again
            rl_callback_read_char()
        }
        guard let line = delivery.withLock({ $0.line }) else { return .endOfInput }
        return .line(line)
    }

    /// Ctrl-Z at the prompt: give the terminal back, stop, and redraw the line when continued.
    private func suspend() {
        rl_deprep_terminal()
        signal(SIGTSTP, SIG_DFL)
        raise(SIGTSTP)   // stops here (ignored in an orphaned process group, as POSIX says)
        installPromptHandlers()
        rl_prep_terminal(1)
        rl_forced_update_display()
    }

    // MARK: plain standard input

    private func readPlain(_ prompt: String) -> LineInput {
        _ = luamp_prompt_take(LUAMP_PROMPT_SIGINT)
        LuaRuntime.writeOutput(prompt)
        LuaRuntime.flushOutput()
        if let line = LuaRuntime.readInputLine() {
            // Echo the line as readline does when its input is not a terminal, so that piping a
            // session into `luamp -i` gives the transcript `lua5.4 -i` (built with readline) gives
            // (readline ends the line only when something is on it: prompt or text).
            if !(prompt.isEmpty && line.isEmpty) { LuaRuntime.writeOutput(line + "\n") }
            return .line(line)
        }
        if luamp_prompt_take(LUAMP_PROMPT_SIGINT) != 0 {
            LuaRuntime.writeOutput("\n")
            return .interrupted
        }
        return .endOfInput
    }

    // MARK: signals while at the prompt

    /// Takes a Ctrl-C that arrived after the last line was read (before the code could run).
    func takePendingInterrupt() -> Bool {
        luamp_prompt_take(LUAMP_PROMPT_SIGINT) != 0
    }

    /// Routes SIGINT, SIGWINCH (and on a terminal SIGTSTP) to the prompt's flags (until code runs, which routes SIGINT
    /// to Lua). The REPL calls it again right after each chunk so Ctrl-C never kills it.
    func installPromptHandlers() {
        luamp_prompt_route_signals(usesReadline ? 1 : 0)   // no SA_RESTART: poll/read return EINTR
    }

    /// Gives SIGINT, SIGWINCH and SIGTSTP back their default actions.
    func close() {
        signal(SIGINT, SIG_DFL)
        signal(SIGWINCH, SIG_DFL)
        signal(SIGTSTP, SIG_DFL)
    }
}
