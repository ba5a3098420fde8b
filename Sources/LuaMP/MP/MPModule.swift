// The `mp` module: one table assembled from every capability's installer.

/// Builds the `mp` table. Each capability (processes, queues, pools, …) lives in its own
/// folder and contributes an installer listed in `installers`.
enum MPModule {
    /// The luamp version (`mp.version`, `luamp -v`).
    static let version = "0.1.0"

    /// Each installer adds its functions to the `mp` table at the given stack index.
    /// A new capability adds one line here.
    static func installCapabilities(_ s: LuaStack, _ t: Int32) {
        installShared(s, t)
        installBasics(s, t)
        installSync(s, t)
        installProcesses(s, t)
        installCodec(s, t)
        installQueues(s, t)
        installPipes(s, t)
        installPools(s, t)
    }

    /// End of the main chunk (Python's interpreter exit): each capability that owns processes
    /// or pools cleans up here (join non-daemon children, terminate daemons and pools).
    /// A new capability with something to clean up adds one line here.
    static func finishCapabilities(_ s: LuaStack) {
        finishPools(s)
        finishProcesses(s)
    }

    /// Creates the module table, sets `package.loaded.mp` (so `require "mp"` returns it) and
    /// the global `mp`. Stack: [-0, +0].
    static func install(_ s: LuaStack) {
        s.preservingTop {
            s.newTable()
            let t = s.top
            installCapabilities(s, t)
            if s.getGlobal("package") == .table, s.rawGet(-1, field: "loaded") == .table {
                s.pushValue(t)
                s.rawSet(-2, field: "mp")
            }
            s.pushValue(t)
            s.setGlobal("mp")
        }
    }
}
