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
        installCluster(s, t)
    }

    /// End of the main chunk (Python's interpreter exit): each capability that owns processes
    /// or pools cleans up here (join non-daemon children, terminate daemons and pools).
    /// A new capability with something to clean up adds one line here.
    static func finishCapabilities(_ s: LuaStack) {
        finishPools(s)
        finishProcesses(s)
        finishObserve(s)
    }

    /// How many processes and pools the runtime of `s` started so far (`RuntimeState.startSequence`).
    static func startSequence(_ s: LuaStack) -> UInt64 { RuntimeState.of(s).startSequence }

    /// The number for a process or pool starting now (in the state `s`).
    static func nextStartSequence(_ s: LuaStack) -> UInt64 {
        let rt = RuntimeState.of(s)
        rt.startSequence += 1
        if HostModule.isHost { HostModule.renewFinalizer(s) }
        return rt.startSequence
    }

    /// Stops what was started after `mark` (a `startSequence` value) and is still running:
    /// pools are terminated, child processes get SIGTERM, then SIGKILL after a short grace, and
    /// are reaped. Older processes and pools are left alone (the REPL after an interrupted line).
    /// A new capability that starts processes adds one line here.
    static func stopCapabilities(_ s: LuaStack, since mark: UInt64) {
        stopPools(s, since: mark)
        stopProcesses(s, since: mark)
    }

    /// Pushes a new module table with every capability installed. Stack: [-0, +1].
    static func pushModule(_ s: LuaStack) {
        RuntimeState.install(s)
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
