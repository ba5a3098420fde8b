// PoolService: pools keep moving while the host runs pure Lua — a timer's signal arms a one-shot hook that runs each pool's non-blocking pump.
internal import CLua
internal import LuaMPShims

/// While any pool of this process has work outstanding, a POSIX timer (`luamp_service_start`,
/// service_shims.c) fires every `periodMicros`; its signal handler only arms a Lua hook of one
/// instruction on the main thread, and that hook — when no Swift function is on the C stack,
/// i.e. the host is in its own Lua code — runs `tick`: every pool's pump with timeout 0, in
/// background mode (reads results, handles deaths, re-queues a dead worker's chunks, sends
/// queued chunks, steals for idle workers; never forks, never runs Lua callbacks, never raises).
/// The tick turns the timer off once no pool has work; the next pool call turns it on again.
/// No thread, and no permanent hook: between ticks the host's Lua runs at full speed.
enum PoolService {
    /// The tick's period while pools have work (µs).
    static let periodMicros = 5_000

    /// After a pool call left work outstanding: turns the service on (no syscall when on).
    static func workPending(_ s: LuaStack) {
        _ = luamp_service_start(s.L, tick, periodMicros)
    }

    /// The runtime of `s` is finishing: the service lets go of its state.
    static func release(_ s: LuaStack) {
        luamp_service_release(s.L)
    }

    /// Run by the hook on the main thread, with no Swift frame below: one background round of
    /// every pool this process owns.
    private static let tick: luamp_service_fn = { L in
        guard let L else { return }
        let s = LuaStack(L)
        var pending = false
        for p in PoolRegistry.of(s).live where p.isOwnedHere && p.phase != .terminated {
            s.preservingTop { p.serviceInBackground(s) }
            pending = pending || p.needsService
        }
        if !pending { luamp_service_stop() }
    }
}

extension PoolState {
    /// Work is outstanding: submitted and not done, queued, or running in a worker.
    var needsService: Bool {
        phase != .terminated && (!jobs.isEmpty || !retry.isEmpty || workers.contains { $0?.inflight.isEmpty == false })
    }

    /// One non-blocking round without the host's attention (`PoolService`): errors cannot
    /// arise here (no callbacks, no forks, no input iterators); should one, the next pool call
    /// meets the same state and reports it.
    func serviceInBackground(_ s: LuaStack) {
        guard isOwnedHere, phase != .terminated, !servicing else { return }
        servicing = true
        inBackground = true
        defer { servicing = false; inBackground = false }
        _ = try? pump(s, timeout: 0, callbacks: false, interrupts: false) { false }
    }
}
