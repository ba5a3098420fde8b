// The process tree: who this process is, the children it started, end-of-script cleanup, os.exit.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// Who this process is in the tree (per process: set again in every forked child), and the
/// children each runtime started (per runtime: `RuntimeState.children`).
enum ProcessTree {
    /// This process's place in the tree. One value, guarded: runtimes on several threads of an
    /// embedding app read it and number their Processes from one counter.
    private struct Identity {
        /// This process: `MainProcess` in the host, the Process's name in a child.
        var current: (name: String, pid: pid_t) = ("MainProcess", getpid())
        /// The parent in a child; nil in the host.
        var parent: (name: String, pid: pid_t)?
        /// Python's `_identity` as text: the default-name path of this process ("" in the host,
        /// "1" in `Process-1`). A string, not an array: short ones live inline, no allocation.
        var path = ""
        /// Processes constructed here so far (for default names).
        var counter = 0
    }
    private static let identity = ForkSafeLock(Identity())

    /// This process: `MainProcess` in the host, the Process's name in a child.
    static var current: (name: String, pid: pid_t) { identity.withLock { $0.current } }
    /// The parent in a child; nil in the host.
    static var parent: (name: String, pid: pid_t)? { identity.withLock { $0.parent } }

    /// True in a process luamp forked.
    static var isChild: Bool { parent != nil }

    /// The identity of the next Process constructed here: this process's identity plus a counter.
    static func nextIdentity() -> String {
        identity.withLock { i in
            i.counter += 1
            return i.path.isEmpty ? String(i.counter) : i.path + ":" + String(i.counter)
        }
    }

    /// `Process-1`, `Process-2`… in the host; `Process-1:1`… in the child `Process-1` (Python's names).
    static func defaultName(_ identity: String) -> String {
        "Process-" + identity
    }

    /// The children the runtime of `s` started and has not forgotten yet.
    static func children(_ s: LuaStack) -> [ProcessRecord] { RuntimeState.of(s).children }

    /// In a freshly forked child of the runtime of `s`: become the process `r`, forget the
    /// parent's children (inherited records stay inert: not ours to join).
    static func enterChild(_ s: LuaStack, _ r: ProcessRecord, parentName: String, parentPID: pid_t) {
        identity.withLock { i in
            i.parent = (parentName, parentPID)
            i.current = (r.name, getpid())
            i.path = r.identity
            i.counter = 0
        }
        Trace.enterChild(name: r.name)
        RuntimeState.of(s).enterChild()
    }

    /// Records a started Process (the userdata at `i`) and keeps it alive until forgotten.
    static func adopt(_ s: LuaStack, _ r: ProcessRecord, at i: Int32) {
        s.pushValue(i)
        r.ref = luaL_ref(s.L, s.registryIndex())
        r.startSequence = MPModule.nextStartSequence(s)
        RuntimeState.of(s).children.append(r)
    }

    /// Drops a reaped Process from its runtime's children and releases its registry reference.
    static func forget(_ s: LuaStack, _ r: ProcessRecord) {
        RuntimeState.of(s).children.removeAll { $0 === r }
        if r.ref != LUA_NOREF {
            luaL_unref(s.L, s.registryIndex(), r.ref)
            r.ref = LUA_NOREF
        }
    }

    /// Ends the children of the runtime of `s` the way Python does at interpreter exit: daemon children
    /// are terminated, then every child is joined. If the script was interrupted (the interrupt
    /// flag is set on entry) or Ctrl-C arrives while joining, the remaining children are stopped
    /// instead (SIGTERM, then SIGKILL after 1 s) and reaped, and the flag is left set so the
    /// caller can end with status 130.
    static func finish(_ s: LuaStack) {
        let children = RuntimeState.of(s).children
        for r in children where r.daemon { r.child?.stop(grace: 1.0) }
        // A script that ended because of Ctrl-C (the flag is still set) does not wait.
        var interrupted = luamp_interrupt_pending() != 0
        for r in children where !interrupted {
            guard let c = r.child else { continue }
            do {
                _ = try c.join()
            } catch {
                interrupted = true
            }
        }
        if interrupted {
            for r in children { r.child?.stop(grace: 1.0) }
            luamp_set_interrupt_pending()
        }
        for r in children { forget(s, r) }
    }

    /// Stops the children of the runtime of `s` started after `mark` that are still running: SIGTERM to all of them
    /// first (so their grace periods overlap), then each is given up to 1 s before SIGKILL, and
    /// reaped. They stay in `children` as ended processes (`is_alive()` false, `exitcode` set).
    /// Never throws and ignores Ctrl-C (cleanup must finish).
    static func stop(_ s: LuaStack, startedAfter mark: UInt64) {
        let started = RuntimeState.of(s).children.filter { $0.startSequence > mark }
        for r in started { try? r.child?.terminate() }
        for r in started { r.child?.stop(grace: 1.0) }
    }
}

extension MPModule {
    /// `mp.current_process`, `mp.parent_process`, `mp.active_children`, and the `os.exit` wrapper.
    static func installProcessTree(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "current_process") { s in
            pushIdentity(s, ProcessTree.current.name, ProcessTree.current.pid)
            return 1
        }
        s.setFunction(t, "parent_process") { s in
            if let p = ProcessTree.parent { pushIdentity(s, p.name, p.pid) } else { s.pushNil() }
            return 1
        }
        s.setFunction(t, "active_children") { s in
            for r in ProcessTree.children(s) where !(r.child?.isAlive ?? false) {
                ProcessTree.forget(s, r)
            }
            let children = ProcessTree.children(s)
            s.newTable(arrayCount: Int32(children.count))
            for (i, r) in children.enumerated() {
                _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(r.ref))
                s.rawSet(-2, index: Int64(i + 1))
            }
            return 1
        }
        wrapExit(s)
    }

    /// `{name = …, pid = …}`. Stack: [-0, +1].
    private static func pushIdentity(_ s: LuaStack, _ name: String, _ pid: pid_t) {
        s.newTable(hashCount: 2)
        s.push(name); s.rawSet(-2, field: "name")
        s.push(Int64(pid)); s.rawSet(-2, field: "pid")
    }

    /// Non-daemon children still running (what `finishProcesses` will join); reaps ended ones.
    static func runningChildren(_ s: LuaStack) -> Int {
        ProcessTree.children(s).reduce(0) { n, r in n + (!r.daemon && (r.child?.isAlive ?? false) ? 1 : 0) }
    }

    /// The end of the main chunk for processes (called from `finishCapabilities`).
    static func finishProcesses(_ s: LuaStack) {
        ProcessTree.finish(s)
    }

    /// Stops the processes started after `mark` (called from `stopCapabilities`).
    static func stopProcesses(_ s: LuaStack, since mark: UInt64) {
        ProcessTree.stop(s, startedAfter: mark)
    }

    /// Replaces `os.exit` by a wrapper that first cleans up: in the host it runs every
    /// capability's finish, then calls the original `os.exit` with the same arguments (so
    /// `os.exit(true|false|n [, close])` keeps its meaning); in a forked child it cleans up only
    /// that child's own children and ends with `fflush(NULL); _exit(code)` — the parent's
    /// cleanup and atexit handlers never run in a child. A Lua chunk does the final call, since
    /// Swift never calls Lua functions unprotected. Stack: [-0, +0].
    private static func wrapExit(_ s: LuaStack) {
        s.preservingTop {
            guard s.getGlobal("os") == .table, s.rawGet(-1, field: "exit") == .function else { return }
            let original = s.top
            let wrapper = "local finish, exit = ...\nreturn function(...) finish(...) return exit(...) end"
            guard (try? s.load(wrapper, name: "=os.exit")) != nil else { return }
            s.pushFunction(name: "exit") { s in
                if ProcessTree.isChild {
                    let code: Int32
                    switch s.type(at: 1) {
                    case .none, .nil: code = 0
                    case .boolean: code = s.toBool(1) ? 0 : 1
                    default:
                        // Not an integer: return, and the original os.exit raises its argument error.
                        guard let v = s.toInteger(1) else { return 0 }
                        code = Int32(truncatingIfNeeded: v)
                    }
                    MPModule.finishCapabilities(s)
                    ChildProcess.exitChild(code & 0xff)
                }
                MPModule.finishCapabilities(s)
                return 0
            }
            s.pushValue(original)
            guard (try? s.pcall(nargs: 2, nresults: 1)) != nil else { return }
            s.rawSet(-3, field: "exit")
        }
    }
}
