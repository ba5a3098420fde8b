// Progress: tqdm-style bars on stderr (or a script's callback) fed done/total/failed counts and drawn from wherever the host waits.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// What `progress =` asked for.
enum ProgressSpec {
    /// A bar on stderr with this label (`progress = true` gives the call's name).
    case bar(label: String?)
    /// `progress = function(done, total, failed) … end` (a registry reference).
    case callback(Int32)

    /// Reads a `progress` value at `i`: true, a label string, a function, or false/nil (none).
    /// A function is referenced in the registry. Stack: [-0, +0].
    static func read(_ s: LuaStack, _ i: Int32, what: String) throws -> ProgressSpec? {
        switch s.type(at: i) {
        case .none, .nil: return nil
        case .boolean: return s.toBool(i) ? .bar(label: nil) : nil
        case .string: return .bar(label: s.toString(i))
        case .function:
            s.pushValue(i)
            return .callback(luaL_ref(s.L, s.registryIndex()))
        default:
            throw LuaRaise("\(what): 'progress' must be true, a label or a function, got \(s.typeName(at: i))")
        }
    }
}

/// `LUAMP_PROGRESS` / `--progress`: a bar for every pool call (per process: `Observability.settings`).
enum ProgressSettings {
    /// Every pool call shows progress.
    static var all: Bool { Observability.settings.withLock { $0.progressAll } }
    /// `LUAMP_PROGRESS=1`: plain periodic lines when stderr is not a terminal.
    static var forced: Bool { Observability.settings.withLock { $0.progressForced } }

    static func readSettings() {
        let env = getenv("LUAMP_PROGRESS").flatMap { String(validatingCString: $0) }.map { !$0.isEmpty && $0 != "0" } ?? false
        Observability.settings.withLock { o in
            if env { o.progressAll = true; o.progressForced = true }
            if o.progress { o.progressAll = true }
        }
    }
}

/// One call's progress: counts fed by the pool, drawn by `ProgressBoard.redraw`.
final class ProgressBar {
    let label: String
    /// Items in the call, nil when unknown (an iterator).
    let total: Int?
    let callbackRef: Int32
    let started = Clock.monotonicSeconds()
    var done = 0
    var failed = 0
    /// True once the call has every outcome (or was stopped).
    let isComplete: () -> Bool
    private var lastDraw = 0.0
    private var drawn = false
    private var reported = (-1, -1)
    /// stderr is a terminal (asked once).
    private let tty = isatty(2) != 0

    init(spec: ProgressSpec, defaultLabel: String, total: Int?, isComplete: @escaping () -> Bool) {
        switch spec {
        case .bar(let l): label = l ?? defaultLabel; callbackRef = LUA_NOREF
        case .callback(let r): label = defaultLabel; callbackRef = r
        }
        self.total = total
        self.isComplete = isComplete
    }

    /// Draws if due. Returns false once the final state was drawn (the bar is then dropped).
    /// - Throws: the callback's error.
    func redraw(_ s: LuaStack, now: Double) throws -> Bool {
        let complete = isComplete()
        if callbackRef != LUA_NOREF {
            let changed = reported != (done, failed)
            if complete || (changed && now - lastDraw >= 0.1) {
                lastDraw = now
                reported = (done, failed)
                try call(s)
            }
            if complete { luaL_unref(s.L, s.registryIndex(), callbackRef) }
            return !complete
        }
        guard tty || ProgressSettings.forced else { return !complete }
        let elapsed = now - started
        if complete {
            if drawn || !tty { write(line(elapsed: elapsed, width: tty ? Self.columns() : 0), final: true, tty: tty) }
            return false
        }
        guard elapsed >= 0.5, now - lastDraw >= (tty ? 0.1 : 1.0) else { return true }
        lastDraw = now
        drawn = true
        write(line(elapsed: elapsed, width: tty ? Self.columns() : 0), final: false, tty: tty)
        return true
    }

    private func call(_ s: LuaStack) throws {
        let base = s.top
        s.checkStack(6)
        _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(callbackRef))
        s.push(Int64(done))
        if let t = total { s.push(Int64(t)) } else { s.pushNil() }
        s.push(Int64(failed))
        if luamp_pcall(s.L, 3, 0, 0) != LUA_OK {
            let r = luaL_ref(s.L, s.registryIndex())
            s.top = base
            throw ProgressCallbackError(ref: r)
        }
        s.top = base
    }

    private func write(_ text: String, final: Bool, tty: Bool) {
        fflush(luamp_stdout())
        let out = tty ? "\r" + text + "\u{1b}[K" + (final ? "\n" : "") : text + "\n"
        fputs(out, luamp_stderr())
        fflush(luamp_stderr())
    }

    /// The terminal's width (stderr's), else `COLUMNS`, else 80.
    static func columns() -> Int {
        var ws = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &ws) == 0 && ws.ws_col > 0 { return Int(ws.ws_col) }
        if let c = getenv("COLUMNS"), let n = Int(String(cString: c)), n > 0 { return n }
        return 80
    }

    /// `label  62%|██████▏   | 6200/10000 [00:03<00:02, 1840 task/s, 1 failed]`, the bar
    /// filling what `width` leaves (no bar when `width` is 0 or the total unknown).
    func line(elapsed: Double, width: Int) -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let failures = failed > 0 ? ", \(failed) failed" : ""
        guard let t = total else {
            return "\(label): \(done) [\(Self.clock(elapsed)), \(Self.rate(rate))\(failures)]"
        }
        let frac = t > 0 ? min(1, Double(done) / Double(t)) : 1
        let pct = String(Int(frac * 100))
        let left = rate > 0 ? Self.clock(Double(t - done) / rate) : "?"
        let tail = "| \(done)/\(t) [\(Self.clock(elapsed))<\(left), \(Self.rate(rate))\(failures)]"
        let head = "\(label) " + String(repeating: " ", count: max(0, 3 - pct.count)) + pct + "%"
        guard width > 0 else { return head + " " + tail.dropFirst(2) }
        let barWidth = width - 1 - head.count - 1 - tail.count
        guard barWidth >= 4 else { return String((head + " " + tail.dropFirst(2)).prefix(max(1, width - 1))) }
        return head + "|" + Self.bar(frac, barWidth) + tail
    }

    static func bar(_ frac: Double, _ width: Int) -> String {
        let eighths = Int(frac * Double(width * 8))
        let full = eighths / 8, part = eighths % 8
        let partials = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
        var s = String(repeating: "█", count: full)
        if full < width {
            s += part > 0 ? partials[part] : " "
            s += String(repeating: " ", count: width - full - 1)
        }
        return s
    }

    static func clock(_ t: Double) -> String {
        guard t.isFinite, t >= 0 else { return "?" }
        let n = Int(t.rounded())
        let (h, m, sec) = (n / 3600, n / 60 % 60, n % 60)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return h > 0 ? "\(h):\(two(m)):\(two(sec))" : "\(two(m)):\(two(sec))"
    }

    static func rate(_ r: Double) -> String {
        if r >= 100 { return "\(Int(r.rounded())) task/s" }
        if r >= 1 || r == 0 { return String(format1(r)) + " task/s" }
        return format1(1 / r) + " s/task"
    }

    private static func format1(_ v: Double) -> String {
        let t = (v * 100).rounded() / 100
        return t == t.rounded() ? String(Int(t)) : String(t)
    }
}

/// An error raised by a progress callback (its value in a registry slot, freed when pushed).
struct ProgressCallbackError: LuaValueError {
    let ref: Int32
    func pushError(onto s: LuaStack) {
        _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(ref))
        luaL_unref(s.L, s.registryIndex(), ref)
    }
}

/// The bars of calls in progress in a runtime (`RuntimeState.progressBars`: a callback bar
/// holds a reference in that runtime's registry), redrawn from wherever its host waits.
enum ProgressBoard {
    static func add(_ rt: RuntimeState, _ b: ProgressBar) { rt.progressBars.append(b) }

    /// `redraw` where no error may be raised and no Lua may run (a `HostWait` tick): terminal
    /// bars only; callbacks wait for the next `redraw`.
    static func redrawQuietly(_ s: LuaStack, _ rt: RuntimeState) {
        guard !rt.progressBars.isEmpty else { return }
        try? redrawAll(s, rt, callbacks: false)
    }

    /// Redraws every bar of `rt` (the runtime of `s`) that is due; drops finished ones (after
    /// their final line).
    /// - Throws: a progress callback's error (the other bars are redrawn next time).
    @inline(__always)
    static func redraw(_ s: LuaStack, _ rt: RuntimeState) throws {
        guard !rt.progressBars.isEmpty else { return }
        try redrawAll(s, rt)
    }

    private static func redrawAll(_ s: LuaStack, _ rt: RuntimeState, callbacks: Bool = true) throws {
        let now = Clock.monotonicSeconds()
        var i = 0
        while i < rt.progressBars.count {
            let b = rt.progressBars[i]
            if !callbacks && b.callbackRef != LUA_NOREF { i += 1; continue }
            let keep: Bool
            do { keep = try b.redraw(s, now: now) } catch {
                if b.isComplete() { rt.progressBars.removeAll { $0 === b } }
                throw error
            }
            if keep { i += 1 } else { rt.progressBars.removeAll { $0 === b } }
        }
    }
}
