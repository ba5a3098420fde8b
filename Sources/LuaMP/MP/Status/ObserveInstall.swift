// The mp functions of observability: mp.trace_start, mp.trace_stop; the trace's start and end with the script (here, after every capability it reads).
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

extension MPModule {
    /// Installs `mp.trace_start`, `mp.trace_stop`, and starts the trace the settings ask for.
    static func installObserve(_ s: LuaStack, _ t: Int32) {
        // Runtimes on several threads of an embedding app install at once: the process-wide
        // hooks are set once, under a lock, and never rewritten while another runtime reads them.
        ObserveWaits.processSetup.withLock { done in
            TraceControl.map(isChild: ProcessTree.isChild)
            guard !done else { return }
            done = true
            Clock.idleHook = { long in Trace.idle(long: long) }
        }
        // Each runtime's waits are watched by its own observer (its progress bars, its spans).
        let rt = RuntimeState.of(s)
        if !rt.waits.observers.contains(where: { $0.1 is ObserveWaits }) { _ = rt.waits.addObserver(ObserveWaits(rt)) }
        OutputLabels.readSettings()
        ProgressSettings.readSettings()
        s.setFunction(t, "trace_start") { s in
            let json = try s.optString(1)
            var html: String?
            if s.type(at: 2) == .table {
                if s.rawGet(2, field: "html") == .string { html = s.toString(-1) }
                s.pop()
            } else if !s.isNoneOrNil(2) {
                throw LuaArgumentError(2, "table expected ({html = FILE}), got \(s.typeName(at: 2))")
            }
            guard json != nil || html != nil else { throw LuaArgumentError(1, "a file name expected") }
            if ProcessTree.isChild && TraceSession.file == nil && Trace.on {
                throw LuaRaise("a trace is already being recorded by the main process")
            }
            do { try TraceSession.start(json: json, html: html, name: ProcessTree.current.name, shared: !ProcessTree.isChild) } catch let e as TraceFileError { throw LuaRaise(e.description) }
            return 0
        }
        s.setFunction(t, "trace_stop") { s in
            guard TraceSession.file != nil else { s.pushNil(); return 1 }
            let path = TraceSession.html ?? TraceSession.file!
            do { try TraceSession.stop(s) } catch let e as TraceFileError { throw LuaRaise(e.description) }
            s.push(path)
            return 1
        }
        do { try TraceSession.startFromSettings(name: ProcessTree.current.name, isChild: ProcessTree.isChild) } catch {
            fputs("luamp: \(error)\n", luamp_stderr())
        }
    }

    /// End of the main chunk: the trace this process started is merged and written (after
    /// every child was joined, so their ends are in it); a child writes what it buffered.
    static func finishObserve(_ s: LuaStack) {
        if TraceSession.file != nil {
            do { try TraceSession.stop(s) } catch { fputs("luamp: \(error)\n", luamp_stderr()) }
        } else {
            Trace.flush()
        }
    }
}

/// Watches every host wait (`HostWait`): progress bars are redrawn while the host waits anywhere
/// in mp (`mp.sleep`, `q:get`, `mp.wait` …), and each wait over 1 ms is a trace span named by
/// its label (`wait pool.map`, `wait AsyncResult.get`, `wait mp.as_completed`).
final class ObserveWaits: HostWaitObserver {
    /// Set once per process by the first install (see installObserve).
    static let processSetup = ForkSafeLock(false)
    private var open: [(String, Int64)] = []
    /// The runtime watched (it owns this observer).
    private unowned let runtime: RuntimeState

    init(_ rt: RuntimeState) { runtime = rt }

    func waitBegan(_ s: LuaStack, label: String) {
        open.append((label, Trace.on ? Trace.now() : 0))
    }

    func waitTick(_ s: LuaStack) { ProgressBoard.redrawQuietly(s, runtime) }

    func waitEnded(_ s: LuaStack, label: String) {
        guard let i = open.lastIndex(where: { $0.0 == label }) else { return }
        let t0 = open[i].1
        open.remove(at: i)
        if t0 > 0 { Trace.wait(label, since: t0) }
    }
}
