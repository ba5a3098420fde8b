// The `mp` module: one table assembled from every capability's installer.

/// Builds the `mp` table. Each capability (processes, queues, pools, …) lives in its own
/// folder and contributes an installer listed in `installers`.
enum MPModule {
    /// The luamp version (`mp.version`, `luamp -v`).
    static let version = "0.1.0"

    /// Each installer adds its functions to the `mp` table at the given stack index.
    /// A new capability adds one line here.
    static func installCapabilities(_ s: LuaStack, _ t: Int32) {
        installObserve(s, t)
        installShared(s, t)
        installBasics(s, t)
        installSync(s, t)
        installTables(s, t)
        installSharedMemory(s, t)
        installProcesses(s, t)
        installCodec(s, t)
        installQueues(s, t)
        installPipes(s, t)
        installPools(s, t)
        installStatus(s, t)
    }

    /// End of the main chunk (Python's interpreter exit): each capability that owns processes
    /// or pools cleans up here (join non-daemon children, terminate daemons and pools).
    /// A new capability with something to clean up adds one line here.
    static func finishCapabilities(_ s: LuaStack) {
        finishPools(s)
        finishProcesses(s)
        finishObserve(s)
    }

    /// Counts the processes started and pools created in this process: each takes the next
    /// number (`nextStartSequence`), so a value read before some code runs tells what that code
    /// started (`LuaRuntime.workMark`).
    nonisolated(unsafe) private(set) static var startSequence: UInt64 = 0

    /// The number for a process or pool starting now (in the state `s`).
    static func nextStartSequence(_ s: LuaStack) -> UInt64 {
        startSequence += 1
        if HostModule.isHost { HostModule.renewFinalizer(s) }
        return startSequence
    }

    /// Stops what was started after `mark` (a `startSequence` value) and is still running:
    /// pools are terminated, child processes get SIGTERM, then SIGKILL after a short grace, and
    /// are reaped. Older processes and pools are left alone (the REPL after an interrupted line).
    /// A new capability that starts processes adds one line here.
    static func stopCapabilities(_ s: LuaStack, since mark: UInt64) {
        stopPools(s, since: mark)
        stopProcesses(since: mark)
    }

    /// Pushes a new module table with every capability installed. Stack: [-0, +1].
    static func pushModule(_ s: LuaStack) {
        s.newTable()
        installCapabilities(s, s.top)
    }

    /// Creates the module table, sets `package.loaded.mp` (so `require "mp"` returns it) and
    /// the global `mp`. Stack: [-0, +0].
    static func install(_ s: LuaStack) {
        s.preservingTop {
            pushModule(s)
            let t = s.top
            if s.getGlobal("package") == .table, s.rawGet(-1, field: "loaded") == .table {
                s.pushValue(t)
                s.rawSet(-2, field: "mp")
            }
            s.pushValue(t)
            s.setGlobal("mp")
        }
    }
}
