// mp.status(): what this process runs now — processes, pools and their workers, queues — as a table that prints as a compact text table.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension MPModule {
    /// Installs `mp.status`.
    static func installStatus(_ s: LuaStack, _ t: Int32) {
        s.setFunction(t, "status") { s in try Status.push(s); return 1 }
    }
}

/// Builds `mp.status()`:
/// ```
/// {process = {name =, pid =},
///  processes = {{name =, pid =, alive =, exitcode =, cpu =, rss =}, …},
///  pools = {{id =, processes =, state =, backlog =, done =, failed =, replaced =,
///            workers = {{name =, pid =, task =, cpu =, rss =}, …}}, …},
///  queues = {{id =, kind =, size =, maxsize =}, …}}
/// ```
/// `cpu` is CPU seconds (user + system) and `rss` resident bytes, from `/proc`; `task` names
/// the chunk a worker runs (`map 5–8`, `apply`) or is nil when idle. The table's `__tostring`
/// gives the text the REPL prints for it (and `print(mp.status())`).
enum Status {
    static func push(_ s: LuaStack) throws {
        guard s.checkStack(20) else { throw LuaError.memory("not enough memory") }
        var text: [String] = []
        let me = ProcessTree.current
        s.newTable()
        let root = s.top
        s.newTable(hashCount: 2)
        s.push(me.name); s.rawSet(-2, field: "name")
        s.push(Int64(getpid())); s.rawSet(-2, field: "pid")
        s.rawSet(root, field: "process")
        let (cpu0, rss0) = usage(getpid())
        text.append("\(me.name) (pid \(getpid())), cpu \(seconds(cpu0)), rss \(bytes(rss0))")

        // processes
        s.newTable()
        var rows: [[String]] = [["process", "pid", "alive", "exitcode", "cpu", "rss"]]
        for (i, r) in ProcessTree.children(s).enumerated() {
            guard let c = r.child else { continue }
            let alive = c.isAlive
            let (cpu, rss) = alive ? usage(c.pid) : (nil, nil)
            s.newTable(hashCount: 6)
            s.push(r.name); s.rawSet(-2, field: "name")
            s.push(Int64(c.pid)); s.rawSet(-2, field: "pid")
            s.push(alive); s.rawSet(-2, field: "alive")
            if let e = c.exitCode { s.push(Int64(e)); s.rawSet(-2, field: "exitcode") }
            if let v = cpu { s.push(v); s.rawSet(-2, field: "cpu") }
            if let v = rss { s.push(Int64(v)); s.rawSet(-2, field: "rss") }
            s.rawSet(-2, index: Int64(i + 1))
            rows.append([r.name, String(c.pid), alive ? "yes" : "no", c.exitCode.map { String($0) } ?? "-", seconds(cpu), bytes(rss)])
        }
        s.rawSet(root, field: "processes")
        if rows.count > 1 { text.append(""); text += table(rows) }

        // pools
        s.newTable()
        var n: Int64 = 0
        for p in PoolRegistry.of(s).live where p.isOwnedHere {
            n += 1
            let o = p.observed
            let state = p.phase == .running ? "running" : p.phase == .closed ? "closed" : "terminated"
            s.newTable(hashCount: 9)
            s.push(Int64(o.serial)); s.rawSet(-2, field: "id")
            s.push(Int64(p.size)); s.rawSet(-2, field: "processes")
            s.push(state); s.rawSet(-2, field: "state")
            s.push(Int64(p.backlog)); s.rawSet(-2, field: "backlog")
            s.push(Int64(o.itemsDone)); s.rawSet(-2, field: "done")
            s.push(Int64(o.failed)); s.rawSet(-2, field: "failed")
            s.push(Int64(o.replaced)); s.rawSet(-2, field: "replaced")
            s.newTable()
            var wrows: [[String]] = [["worker", "pid", "task", "cpu", "rss"]]
            var k: Int64 = 0
            for case let w? in p.workers {
                k += 1
                let (cpu, rss) = usage(w.child.pid)
                let task = currentTask(p, w)
                s.newTable(hashCount: 5)
                s.push(w.name); s.rawSet(-2, field: "name")
                s.push(Int64(w.child.pid)); s.rawSet(-2, field: "pid")
                if let t = task { s.push(t); s.rawSet(-2, field: "task") }
                if let v = cpu { s.push(v); s.rawSet(-2, field: "cpu") }
                if let v = rss { s.push(Int64(v)); s.rawSet(-2, field: "rss") }
                s.rawSet(-2, index: k)
                wrows.append([w.name, String(w.child.pid), task ?? "idle", seconds(cpu), bytes(rss)])
            }
            s.rawSet(-2, field: "workers")
            s.rawSet(-2, index: n)
            text.append("")
            text.append("pool \(o.serial) (\(state), \(p.size) processes): backlog \(p.backlog), done \(o.itemsDone), failed \(o.failed), replaced \(o.replaced)")
            text += table(wrows).map { "  " + $0 }
        }
        s.rawSet(root, field: "pools")

        // queues
        s.newTable()
        var qrows: [[String]] = [["queue", "kind", "size", "maxsize"]]
        var qn: Int64 = 0
        if s.rawGet(s.registryIndex(), field: StatusObjects.registryKey) == .table, let a = Arena.current {
            let objs = s.top
            var found: [(UInt64, String)] = []
            s.pushNil()
            while lua_next(s.L, objs) != 0 {
                let kind = s.toString(-1) ?? "Queue"
                if let u = luaL_testudata(s.L, -2, "mp." + kind) {
                    found.append((u.load(as: SharedRef.self).offset, kind))
                }
                s.pop()
            }
            for (off, kind) in found.sorted(by: { $0.0 < $1.0 }) {
                let q = SharedQueue(a, off)
                qn += 1
                s.newTable(hashCount: 4)
                s.push(Int64(off)); s.rawSet(-2, field: "id")
                s.push(kind); s.rawSet(-2, field: "kind")
                s.push(Int64(q.approximateCount)); s.rawSet(-2, field: "size")
                if q.maxsize > 0 { s.push(Int64(q.maxsize)); s.rawSet(-2, field: "maxsize") }
                s.rawSet(-3, index: qn)
                qrows.append(["queue \(off)", kind, String(q.approximateCount), q.maxsize > 0 ? String(q.maxsize) : "-"])
            }
        }
        s.pop()
        s.rawSet(root, field: "queues")
        if qrows.count > 1 { text.append(""); text += table(qrows) }

        let rendered = text.joined(separator: "\n")
        s.newTable(hashCount: 2)
        s.push("mp.status"); s.rawSet(-2, field: "__name")
        s.pushFunction(name: "__tostring") { s in s.push(rendered); return 1 }
        s.rawSet(-2, field: "__tostring")
        lua_setmetatable(s.L, root)
    }

    /// The chunk `w` runs now (its oldest unanswered one, once the worker claimed it).
    static func currentTask(_ p: PoolState, _ w: PoolWorker) -> String? {
        guard let c = w.inflight.first, WorkerStatusPage.hasStarted(p.status.started(w.slot), c.id) else { return nil }
        return PoolTrace.name(c.job.mode, c.position, c.count)
    }

    /// CPU seconds and resident bytes of `pid` from /proc (nil when it is gone).
    static func usage(_ pid: pid_t) -> (Double?, Int?) {
        guard let stat = TraceFiles.readFile("/proc/\(pid)/stat") else { return (nil, nil) }
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return (nil, nil) }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // after the name: state is field 3, utime 14, stime 15, rss 24 (in pages)
        guard fields.count > 22, let ut = Double(fields[11]), let st = Double(fields[12]), let rss = Int(fields[21]) else { return (nil, nil) }
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((ut + st) / hz, rss * Int(sysconf(Int32(_SC_PAGESIZE))))
    }

    static func seconds(_ v: Double?) -> String {
        guard let v else { return "-" }
        return String((v * 100).rounded() / 100) + " s"
    }

    static func bytes(_ v: Int?) -> String {
        guard let v else { return "-" }
        if v >= 1 << 30 { return String((Double(v) / Double(1 << 30) * 10).rounded() / 10) + " GiB" }
        if v >= 1 << 20 { return String((Double(v) / Double(1 << 20) * 10).rounded() / 10) + " MiB" }
        return String(v / 1024) + " KiB"
    }

    /// Rows as aligned columns (the first left-aligned, the rest right-aligned).
    static func table(_ rows: [[String]]) -> [String] {
        guard let cols = rows.first?.count else { return [] }
        var width = Array(repeating: 0, count: cols)
        for r in rows { for (i, c) in r.enumerated() { width[i] = max(width[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in
                let pad = String(repeating: " ", count: width[i] - c.count)
                return i == 0 ? c + pad : pad + c
            }.joined(separator: "  ").trailingSpacesRemoved
        }
    }
}

extension String {
    fileprivate var trailingSpacesRemoved: String {
        var t = Substring(self)
        while t.last == " " { t = t.dropLast() }
        return String(t)
    }
}
