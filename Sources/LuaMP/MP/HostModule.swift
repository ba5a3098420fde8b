// mp as a module of another Lua interpreter: what mp.so's luaopen_mp does for the stock lua5.4.
internal import CLua
internal import LuaMPShims
import Synchronization

/// `require "mp"` from an interpreter that is not luamp (Debian's `lua5.4` loading mp.so).
///
/// The module is the same as luamp's; what luamp's command does around a script is done here
/// by other means: the end-of-script cleanup (joining children, stopping pools) runs when the
/// host closes the state (a finalizer kept the newest one, so it runs before the other mp
/// objects are finalized) or exits through `os.exit`; Ctrl-C is chained in front of the host's
/// own SIGINT handler (`luamp_host.h`), so blocking waits wake up and raise `interrupted!`.
@_spi(HostModule) public enum HostModule {
    /// Registry key of this state's mp table (a second `luaopen_mp` returns the same table).
    static let moduleKey = "luamp.hostmodule"
    /// Registry key of the end-of-script finalizer.
    static let finalizerKey = "luamp.hostfinalizer"
    /// True once mp.so has been opened by a host interpreter in this process (per process:
    /// set once, read by every runtime; an atomic, so runtimes on other threads may read it).
    static var isHost: Bool { opened.load(ordering: .relaxed) }
    private static let opened = Atomic<Bool>(false)

    /// `luaopen_mp`: pushes the mp table and returns 1. Never raises (Swift calls no raising
    /// Lua API here; allocations that fail are Lua memory errors at `require`).
    /// - Parameter L: the `lua_State` that runs `require "mp"`.
    public static func open(_ L: OpaquePointer) -> Int32 {
        let s = LuaStack(L)
        if s.rawGet(s.registryIndex(), field: moduleKey) == .table { return 1 }
        s.pop()
        opened.store(true, ordering: .relaxed)
        luamp_host_enter(L)
        MPModule.pushModule(s)
        s.pushValue(-1)
        s.rawSet(s.registryIndex(), field: moduleKey)
        renewFinalizer(s)
        return 1
    }

    /// Makes the end-of-script finalizer the newest object marked for finalization (called at
    /// every process start and pool creation). Stack: [-0, +0].
    static func renewFinalizer(_ s: LuaStack) {
        _ = luamp_host_renew_finalizer(s.L, finalizerKey, hostFinish)
    }
}

/// The host closed the state: mp's end of script (children joined, daemons and pools stopped).
/// After a Ctrl-C the children are stopped rather than waited for, as luamp does when a script
/// ends on Ctrl-C: the host does not tell how its script ended, so any Ctrl-C counts.
private let hostFinish: @convention(c) (OpaquePointer?) -> Int32 = { L in
    guard let L else { return 0 }
    if luamp_sigint_seen() != 0 { luamp_set_interrupt_pending() }
    MPModule.finishCapabilities(LuaStack(L))
    return 0
}
