// The Lua `Process` object: constructor, fields, methods, and what the child runs.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

/// The Swift side of one Lua `Process` userdata (the userdata holds it retained; `__gc`
/// releases it). The target and its arguments live in the userdata's user value, a table
/// `{target, args, n}`, so Lua's collector sees them.
final class ProcessRecord {
    var name: String
    var daemon: Bool
    /// Python's `_identity` (the path of counters that names `Process-1:2`).
    let identity: String
    /// The child once started.
    var child: ChildProcess?
    /// Registry reference to the userdata while it is in `ProcessTree.children`.
    var ref: Int32 = LUA_NOREF
    /// When it was started (`MPModule.nextStartSequence`); 0 before.
    var startSequence: UInt64 = 0
    /// `label_output = true`: the child's output lines start with `[name] `.
    var labelOutput = false

    init(name: String?, daemon: Bool) {
        identity = ProcessTree.nextIdentity()
        self.name = name ?? ProcessTree.defaultName(identity)
        self.daemon = daemon
    }

    /// The exit code, reaping the child without blocking if it has ended.
    var exitCode: Int32? {
        guard let c = child else { return nil }
        _ = c.isAlive
        return c.exitCode
    }
}

extension MPModule {
    /// Metatable name of Process userdata.
    static let processMeta = "mp.Process"
    /// The most arguments a target can take: Lua's stack limit (LUAI_MAXSTACK, 1,000,000), since
    /// no Lua stack holds more. Near it the child may still fail with "too many arguments".
    /// Computed, not a lazy `static let`: a child reads it first, and a one-time initializer
    /// run there would cost copy-on-write faults on every start.
    static var maxTargetArguments: Int64 { Int64(luamp_lua_maxstack()) }

    /// Installs `mp.Process` and its metatable, and the process-tree functions.
    static func installProcesses(_ s: LuaStack, _ t: Int32) {
        luamp_ignore_sigpipe()
        ChildRandom.capture(s)
        s.preservingTop { makeProcessMetatable(s) }
        s.setFunction(t, "Process") { s in try newProcess(s) }
        installProcessTree(s, t)
    }

    // MARK: constructor

    /// `mp.Process{target=, args=, name=, daemon=}` or `mp.Process(fn, ...)`. Stack: [-0, +1].
    private static func newProcess(_ s: LuaStack) throws -> Int32 {
        var name: String?
        var daemon = false
        var labelOutput = false
        let n = s.top
        s.newTable()                       // the user value: {target, args, n}
        let uv = s.top
        if s.type(at: 1) == .table {
            if s.rawGet(1, field: "target") != .function {
                throw LuaArgumentError(1, "field 'target' must be a function, got \(s.typeName(at: -1))")
            }
            s.rawSet(uv, index: 1)
            switch s.rawGet(1, field: "args") {
            case .nil: s.pop(); s.newTable()
            case .table: break
            default: throw LuaArgumentError(1, "field 'args' must be a table, got \(s.typeName(at: -1))")
            }
            let args = s.top
            var count = s.rawLength(args)
            if s.rawGet(args, field: "n") != .nil {
                guard let v = s.toInteger(-1), v >= 0 else {
                    throw LuaArgumentError(1, "field 'args.n' must be a non-negative integer")
                }
                if v > maxTargetArguments {
                    throw LuaArgumentError(1, "args.n too large: \(v) > \(maxTargetArguments)")
                }
                count = v
            } else if count > maxTargetArguments {
                throw LuaArgumentError(1, "too many args: \(count) > \(maxTargetArguments)")
            }
            s.pop()
            s.rawSet(uv, index: 2)
            s.push(count); s.rawSet(uv, index: 3)
            switch s.rawGet(1, field: "name") {
            case .nil: break
            case .string, .number: name = s.toString(-1)
            default: throw LuaArgumentError(1, "field 'name' must be a string, got \(s.typeName(at: -1))")
            }
            s.pop()
            switch s.rawGet(1, field: "daemon") {
            case .nil, .boolean: daemon = s.toBool(-1)
            default: throw LuaArgumentError(1, "field 'daemon' must be a boolean, got \(s.typeName(at: -1))")
            }
            s.pop()
            labelOutput = s.rawGet(1, field: "label_output") != .nil && s.toBool(-1)
            s.pop()
        } else if s.type(at: 1) == .function {
            s.pushValue(1); s.rawSet(uv, index: 1)
            s.newTable(arrayCount: max(0, n - 1))
            if n >= 2 { for i in 2...n { s.pushValue(i); s.rawSet(-2, index: Int64(i - 1)) } }
            s.rawSet(uv, index: 2)
            s.push(Int64(max(0, n - 1))); s.rawSet(uv, index: 3)
        } else {
            throw LuaArgumentError(1, "function or table expected, got \(s.typeName(at: 1))")
        }
        let record = ProcessRecord(name: name, daemon: daemon)
        record.labelOutput = labelOutput
        pushProcess(s, record, userValue: uv)
        return 1
    }

    /// Pushes a new Process userdata for `record` with the user value at `uv`. Stack: [-0, +1].
    private static func pushProcess(_ s: LuaStack, _ record: ProcessRecord, userValue uv: Int32) {
        let mem = luamp_newuserdata(s.L, MemoryLayout<UnsafeMutableRawPointer>.size)!
        mem.storeBytes(of: Unmanaged.passRetained(record).toOpaque(), as: UnsafeMutableRawPointer.self)
        s.rawGet(s.registryIndex(), field: processMeta)
        lua_setmetatable(s.L, -2)
        s.pushValue(uv)
        lua_setiuservalue(s.L, -2, 1)
    }

    /// The record of the Process at `i`, or nil when `i` is not a Process.
    static func toProcess(_ s: LuaStack, _ i: Int32) -> ProcessRecord? {
        guard s.type(at: i) == .userdata, let mem = s.toUserdata(i) else { return nil }
        let isProcess: Bool = s.preservingTop {
            guard lua_getmetatable(s.L, i) != 0 else { return false }
            s.rawGet(s.registryIndex(), field: processMeta)
            return lua_rawequal(s.L, -1, -2) != 0
        }
        guard isProcess else { return nil }
        let raw = mem.load(as: UnsafeMutableRawPointer?.self)
        return raw.map { Unmanaged<ProcessRecord>.fromOpaque($0).takeUnretainedValue() }
    }

    private static func checkProcess(_ s: LuaStack, _ i: Int32) throws -> ProcessRecord {
        guard let r = toProcess(s, i) else {
            throw LuaArgumentError(i, "Process expected, got \(s.typeName(at: i))")
        }
        return r
    }

    // MARK: metatable

    /// Creates the `mp.Process` metatable in the registry. Stack: [-0, +0] (caller restores).
    private static func makeProcessMetatable(_ s: LuaStack) {
        guard let mt = s.newObjectMetatable(processMeta, name: "Process") else { return }
        let methods = s.top
        s.setFunction(methods, "start") { s in try start(s, try checkProcess(s, 1)); return 0 }
        s.setFunction(methods, "join") { s in
            let r = try checkProcess(s, 1)
            let timeout = try s.optNumber(2)
            if let t = timeout, t.isNaN { throw LuaArgumentError(2, "timeout is NaN") }
            guard let c = r.child else { throw LuaRaise("can only join a started process") }
            let t0 = Trace.on ? Trace.now() : 0
            let done = try c.join(timeout: timeout)
            if t0 > 0 { Trace.wait("join " + r.name, since: t0, args: "\"pid\":\(c.pid)") }
            if done { ProcessTree.forget(s, r) }
            s.push(done)
            return 1
        }
        s.setFunction(methods, "is_alive") { s in
            let r = try checkProcess(s, 1)
            s.push(r.child?.isAlive ?? false)
            return 1
        }
        for (name, sig) in [("terminate", SIGTERM), ("kill", SIGKILL), ("interrupt", SIGINT)] {
            s.setFunction(methods, name) { s in
                let r = try checkProcess(s, 1)
                guard let c = r.child else { throw LuaRaise("cannot \(name) a process that was not started") }
                try c.send(signal: sig)
                return 0
            }
        }
        s.pushValue(methods)
        s.pushFunction(name: "__index", upvalues: 1) { s in
            let r = try checkProcess(s, 1)
            if s.type(at: 2) == .string {
                switch s.toString(2)! {
                case "pid": if let c = r.child { s.push(Int64(c.pid)) } else { s.pushNil() }; return 1
                case "name": s.push(r.name); return 1
                case "daemon": s.push(r.daemon); return 1
                case "exitcode": if let e = r.exitCode { s.push(Int64(e)) } else { s.pushNil() }; return 1
                case "error":
                    _ = r.exitCode
                    if let m = r.child?.reportedMessage { s.push(m) } else { s.pushNil() }
                    return 1
                default: break
                }
            }
            s.pushValue(2)
            lua_rawget(s.L, s.upvalueIndex(2))
            return 1
        }
        s.rawSet(mt, field: "__index")
        s.pop()                              // methods
        s.setFunction(mt, "__newindex") { s in
            let r = try checkProcess(s, 1)
            let key = s.type(at: 2) == .string ? s.toString(2)! : s.describe(2)
            switch key {
            case "name":
                r.name = try s.checkString(3)
            case "daemon":
                if r.child != nil { throw LuaRaise("cannot set daemon of a started process") }
                r.daemon = s.toBool(3)
            default:
                throw LuaRaise("cannot set field '\(key)' of a Process (only name and daemon)")
            }
            return 0
        }
        s.setFunction(mt, "__tostring") { s in
            let r = try checkProcess(s, 1)
            var text = "<Process name='\(r.name)'"
            if let c = r.child {
                text += " pid=\(c.pid)"
                if let e = r.exitCode { text += " stopped exitcode=\(e)" } else { text += " started" }
            } else {
                text += " initial"
            }
            if r.daemon { text += " daemon" }
            s.push(text + ">")
            return 1
        }
        s.setFunction(mt, "__gc") { s in
            if let mem = s.toUserdata(1), let raw = mem.load(as: UnsafeMutableRawPointer?.self) {
                mem.storeBytes(of: nil, as: UnsafeMutableRawPointer?.self)
                Unmanaged<ProcessRecord>.fromOpaque(raw).release()
            }
            return 0
        }
    }

    // MARK: start and the child's life

    /// `p:start()`: forks; the child runs the target and never returns here.
    private static func start(_ s: LuaStack, _ r: ProcessRecord) throws {
        if r.child != nil { throw LuaRaise("cannot start a process twice") }
        let parentName = ProcessTree.current.name
        let parentPID = getpid()
        r.child = try ChildProcess.spawn { ctx in
            ProcessTree.enterChild(s, r, parentName: parentName, parentPID: parentPID)
            ChildRandom.reseed(s)
            OutputLabels.enterChild(s, label: r.labelOutput, name: r.name)
            return runTarget(s, r, ctx)
        }
        ProcessTree.adopt(s, r, at: 1)
        if Trace.on, let c = r.child { Trace.name(pid: c.pid, r.name) }
    }

    /// In the child: calls `target(table.unpack(args, 1, n))` protected, reports an uncaught
    /// error, then cleans up this process's own children. Returns the exit status.
    private static func runTarget(_ s: LuaStack, _ r: ProcessRecord, _ ctx: ChildProcess.ChildContext) -> Int32 {
        lua_getiuservalue(s.L, 1, 1)
        let uv = s.top
        s.rawGet(uv, index: 1)                                   // target
        s.rawGet(uv, index: 3)
        // The constructor caps n at maxTargetArguments; clamp anyway so no arithmetic can trap.
        let n = Int32(clamping: min(max(s.toInteger(-1) ?? 0, 0), maxTargetArguments))
        s.pop()
        var status: Int32 = 0
        if !s.checkStack(n &+ 8) {
            reportError(r, ctx, message: "too many arguments for the target (\(n))", traceback: "")
            status = 1
        } else {
            s.rawGet(uv, index: 2)
            let args = s.top
            if n > 0 { for i in 1...n { s.rawGet(args, index: Int64(i)) } }
            s.remove(args)
            if luamp_call_in_thread(s.L, n) != LUA_OK {
                var tb = ""
                let e = s.popError(status: LUA_ERRRUN)
                if case .runtime(_, let t) = e { tb = t }
                reportError(r, ctx, message: e.message, traceback: tb)
                status = 1
            }
        }
        MPModule.finishCapabilities(s)
        return status
    }

    /// Prints `Process NAME (pid N): message` and the traceback on stderr and sends both to the parent.
    private static func reportError(_ r: ProcessRecord, _ ctx: ChildProcess.ChildContext, message: String, traceback: String) {
        let text = traceback.isEmpty ? message : message + "\n" + traceback
        let line = "Process \(r.name) (pid \(getpid())): \(text)\n"
        fflush(luamp_stdout())
        fputs(line, luamp_stderr())
        fflush(luamp_stderr())
        ctx.report(text)
    }
}
