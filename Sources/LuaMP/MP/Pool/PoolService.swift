// PoolService: pools keep moving while the host runs pure Lua — a timer's signal arms a one-shot hook that runs each pool's non-blocking pump.
internal import CLua
internal import LuaMPShims

/// While any pool of this process has work outstanding, a POSIX timer (`luamp_service_start`,
/// service_shims.c) fires every `periodMicros`. Its signal handler only marks a round due and
/// arms a Lua hook of one instruction on the main thread (and on the coroutine that last left
/// work outstanding). A due round — `tick`: every pool's pump with timeout 0, in background mode
/// (reads results, handles deaths, re-queues a dead worker's chunks, sends queued chunks, steals
/// for idle workers; never forks, never runs Lua callbacks, never raises) — runs at the first of:
/// - the hook, when no Swift function is on the C stack (the host is in its own Lua code);
/// - the end of a slice of `Deadline.wait`, the one wait loop, when no pool call is on the
///   stack (the host blocks on a queue, lock, event, semaphore, condition, join or pipe; while
///   the service is on those waits sleep at most 5 ms at a time);
/// - `LuaRuntime.serviceWhileIdle`, called by an app waiting outside Lua (the REPL's prompt).
/// The tick turns the timer off once no pool has work; the next pool call turns it on again.
/// No thread, and no permanent hook: between ticks the host's Lua runs at full speed.
enum PoolService {
    /// The tick's period while pools have work (µs).
    static let periodMicros = 5_000

    /// After a pool call left work outstanding: turns the service on (no syscall when on).
    static func workPending(_ s: LuaStack) {
        if luamp_service_start(s.L, tick, periodMicros) != 0 { luamp_service_note_thread(s.L) }
    }

    /// The runtime of `s` is finishing: the service lets go of its state.
    static func release(_ s: LuaStack) {
        luamp_service_release(s.L)
    }

    /// One background round of every pool this process owns, on `L` (any thread of the runtime:
    /// the hook's, or the one whose wait runs it).
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

extension LuaStack {
    /// Sets `t[name]` to a pool entry point: while it runs, no service round starts from a wait
    /// inside it (`luamp_pool_calls`), since the pool's state may be half changed there.
    func setPoolFunction(_ t: Int32, _ name: String, _ fn: @escaping SwiftFunction) {
        let t = absIndex(t)
        pushPoolFunction(name: name, fn)
        rawSet(t, field: name)
    }

    /// `pushFunction` for a pool entry point (see `setPoolFunction`). Stack: [-nup, +1].
    func pushPoolFunction(name: String, upvalues nup: Int32 = 0, _ fn: @escaping SwiftFunction) {
        pushFunction(name: name, upvalues: nup) { s in
            luamp_pool_call_enter()
            defer { luamp_pool_call_leave() }
            return try fn(s)
        }
    }
}
