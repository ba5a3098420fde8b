// luamp-embed-harness: an app-like executable for Tests/cli/test_embedding.py (Swift functions in forked workers, the thread guard, the fork server).
//
// Usage: luamp-embed-harness COMMAND [ARGS]
//   direct             no threads: run a forking script in-process, workers call Swift functions
//   two-runtimes       no threads: one runtime finishes while another has a live child and pool
//   thread-guard       start Dispatch threads, then try to start a Process in-process
//   fork-server REPS   start Dispatch threads, then run REPS forking scripts through a fork server
//   remote-api         the LuaRemoteRuntime API, errors and lost runtimes
//   bench              CASE SECONDS lines for scripts/bench embedding
//   no-serve           main forgets serveIfRequested: start() must fail clearly, not hang
//   memory CASE N FREE SQUEEZE  big LuaValue conversions with FREE MiB left (Tests/cli/test_memory.py)
import Dispatch
import Glibc
import LuaMP

/// The Swift functions every runtime of this app gets (in-process and in fork-server runtimes).
func setUpRuntime(_ lua: LuaRuntime) throws {
    if lua.global("print") == .nil { throw HarnessError("setup needs the base library") }
    lua.register("host_add") { args in
        [.integer(try args.argument(0, as: Int64.self) + args.argument(1, as: Int64.self))]
    }
    lua.register("host_pid") { _ in [.integer(Int64(getpid()))] }
    lua.register("host_fail") { _ in throw LuaRaise("host says no") }
}

/// A value shared between app threads, behind a lock.
final class Shared<T>: @unchecked Sendable {
    private var v: T
    private let lock = DispatchSemaphore(value: 1)
    init(_ v: T) { self.v = v }
    var value: T { lock.wait(); defer { lock.signal() }; return v }
    func update(_ f: (inout T) -> Void) { lock.wait(); defer { lock.signal() }; f(&v) }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

let command = CommandLine.arguments.dropFirst().first ?? ""
if command != "no-serve" {
    LuaForkServer.serveIfRequested(setup: { try setUpRuntime($0) })   // first thing, before any thread
}

/// Seconds on the monotonic clock.
func monotonic() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Threads of this process (/proc/self/status).
func threadCount() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("Threads:") { return Int(s.dropFirst(8).trimmingCharacters()) ?? -1 }
    }
    return -1
}

extension Substring {
    func trimmingCharacters() -> String { String(self.filter { !$0.isWhitespace }) }
}

/// What a real app does before it runs scripts: Dispatch work, a Swift concurrency task, and a
/// thread that stays busy the whole time.
func startAppThreads() {
    let group = DispatchGroup()
    for i in 0..<4 {
        DispatchQueue.global().async(group: group) {
            var x = 0
            for j in 0..<200_000 { x &+= j &* i }
            if x == 42 { print("") }
        }
    }
    group.wait()
    let done = DispatchSemaphore(value: 0)
    Task.detached { done.signal() }
    done.wait()
    DispatchQueue.global().async { while true { usleep(2000) } }
}

/// A script whose workers call the app's Swift function: three processes report through their
/// exit codes (no queue needed); a pool, when `mp.Pool` exists, maps over it too.
let forkingScript = """
    local base = ...
    local procs = {}
    for i = 1, 3 do
        local p = mp.Process(function() os.exit(host_add(base, i)) end)
        p:start()
        procs[i] = p
    end
    local codes = {}
    for i, p in ipairs(procs) do
        p:join()
        assert(p.exitcode == base + i, "worker " .. i .. " exit code " .. tostring(p.exitcode))
        codes[i] = p.exitcode
    end
    if mp.Pool then
        local pool = mp.Pool(2)
        local r = pool:map(function(x) return host_add(x, base) end, {1, 2, 3})
        pool:close(); pool:join()
        assert(r[1] == base + 1 and r[3] == base + 3, "pool results")
    end
    return codes[1], codes[2], codes[3], mp.Pool ~= nil
    """

/// The descriptors open in this process (/proc/self/fd).
func openDescriptors() -> Set<Int32> {
    var fds = Set<Int32>()
    guard let d = opendir("/proc/self/fd") else { return fds }
    defer { closedir(d) }
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let fd = Int32(name) { fds.insert(fd) }
    }
    return fds
}

func expect(_ ok: Bool, _ what: String, _ detail: @autoclosure () -> String = "") {
    if ok { passed += 1; print("PASS \(what)") } else { failed += 1; print("FAIL \(what) \(detail())") }
}
nonisolated(unsafe) var passed = 0
nonisolated(unsafe) var failed = 0

func runCommand() throws -> Int32 {
    switch command {
    case "direct":
        let lua = try LuaRuntime()
        try setUpRuntime(lua)
        let r = try lua.run(string: forkingScript, arguments: [10])
        print("direct results \(r.prefix(3).map(\.description).joined(separator: " ")) pool=\(r[3])")
        lua.finish()
        return 0

    case "idle-service":
        // An app that waits outside Lua (its own poll loop) while a pool has more work than the
        // pipes hold: LuaRuntime.serviceWhileIdle() keeps it going. The tasks wait for a file
        // made once the script returned, so none runs while Lua does.
        let dir = CommandLine.arguments.dropFirst(2).first ?? "/tmp"
        let lua = try LuaRuntime()
        _ = try lua.run(string: """
            local dir = ...
            pool = mp.Pool(2); rs = {}
            local arg = string.rep('a', 4096)
            for i = 1, 1500 do
              rs[i] = pool:apply_async(function(a)
                while not io.open(dir .. '/go') do mp.sleep(0.001) end
                local f = io.open(dir .. '/marks', 'a') f:write('x') f:close()
                return string.rep('r', #a)
              end, {arg})
            end
            """, arguments: [.string(dir)])
        fclose(fopen(dir + "/go", "w"))
        func marks() -> Int {
            var st = stat()
            return stat(dir + "/marks", &st) == 0 ? Int(st.st_size) : 0
        }
        let deadline = time(nil) + 60
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)                        // never readable: the app's own event source
        var wakes = 0
        while marks() < 1500 && time(nil) < deadline {
            var p = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, lua.poolsHaveWork ? -1 : 100)   // the service's signal wakes it
            wakes += 1
            lua.serviceWhileIdle()
        }
        print("idle marks \(marks()) woke \(wakes > 0)")
        let r = try lua.run(string: "local n = 0 for i = 1, 1500 do if #rs[i]:get(5) == 4096 then n = n + 1 end end return n")
        print("idle results \(r.first?.description ?? "none")")
        lua.finish()
        return 0

    case "two-runtimes":
        // A keeps a child (waiting on an event) and a pool; B starts its own, then finishes.
        // B's finish must join only B's child and terminate only B's pool.
        let a = try LuaRuntime()
        let b = try LuaRuntime()
        try a.run(string: """
            ev = mp.Event()
            child = mp.Process(function() os.exit(ev:wait(10) and 0 or 7) end)
            child:start()
            pool = mp.Pool(2)
            """)
        try b.run(string: """
            local p = mp.Process(function() end)
            p:start()
            local pool = mp.Pool(1)
            assert(pool:map(function(x) return x + 1 end, {1})[1] == 2)
            """)
        b.finish()
        let r = try a.run(string: """
            local alive, n = child:is_alive(), #mp.active_children()
            local ok, sq = pcall(function() return pool:map(function(x) return x * x end, {1, 2, 3}) end)
            ev:set()
            child:join()
            return alive, n, ok and table.concat(sq, ",") or tostring(sq), child.exitcode
            """)
        print("after b finished: alive=\(r[0]) children=\(r[1]) map=\(r[2]) exitcode=\(r[3])")
        let after = try b.run(string: "return #mp.active_children()")
        print("b children after its finish: \(after[0])")
        a.finish()
        return 0

    case "thread-guard":
        startAppThreads()
        print("app threads \(threadCount())")
        let lua = try LuaRuntime()
        try setUpRuntime(lua)
        let r = try lua.evaluate("pcall(function() local p = mp.Process(function() end); p:start() end)")
        print("start ok=\(r[0])")
        print("error: \(r.count > 1 ? r[1].description : "")")
        return 0

    case "fork-server":
        let reps = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 200
        startAppThreads()
        print("app threads \(threadCount())")
        let server = try LuaForkServer.start()
        print("server threads \(server.serverThreadCount)")
        let lua = try server.makeRuntime()
        for rep in 1...reps {
            let r = try lua.run(string: forkingScript, arguments: [.integer(Int64(rep % 100))])
            let b = Int64(rep % 100)
            guard r.prefix(3) == [.integer(b + 1), .integer(b + 2), .integer(b + 3)] else {
                print("rep \(rep) wrong results \(r)")
                return 1
            }
        }
        print("sequential reps \(reps) ok")
        // Several app threads at once, each with its own runtime.
        let results = Shared([Int](repeating: -1, count: 4))
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            do {
                let rt = try server.makeRuntime()
                for _ in 0..<3 { _ = try rt.run(string: forkingScript, arguments: [.integer(Int64(20 * t))]) }
                results.update { $0[t] = 3 }
            } catch {
                print("thread \(t): \(error)")
                results.update { $0[t] = 0 }
            }
        }
        print("concurrent runtimes \(results.value.filter { $0 == 3 }.count)/4 ok")
        print("server threads \(server.serverThreadCount)")
        server.stop()
        return 0

    case "remote-api":
        startAppThreads()
        let server = try LuaForkServer.start()
        let lua = try server.makeRuntime()
        expect(try lua.evaluate("6 * 7, 'x'") == [42, "x"], "evaluate")
        expect(try lua.evaluate("1.5", as: Double.self) == 1.5, "evaluate as")
        try lua.setGlobal("config", ["workers": 3, "name": "w"] as [String: LuaValue])
        expect(try lua.global("config") == ["workers": 3, "name": "w"], "globals round trip")
        expect(try lua.global("config", as: [String: LuaValue].self)["workers"] == 3, "global as")
        let remotePID = try lua.evaluate("host_pid()")
        expect(lua.pid != getpid() && remotePID == [.integer(Int64(lua.pid))], "runs in its own process")
        let tricky: LuaValue = [1: 2.0, "bin": .bytes([0, 255, 10]), true: [[1, 2], ["k": .nil]], 3.5: "f"]
        try lua.run(string: "function echo(...) return ... end")
        expect(try lua.call(global: "echo", [tricky, .nil, 7]) == [tricky, .nil, 7], "values cross faithfully")
        do {
            _ = try lua.run(string: "local function f() error('boom') end f()", name: "=job")
            expect(false, "runtime error")
        } catch let LuaError.runtime(message, traceback) {
            expect(message == "job:1: boom" && traceback.contains("stack traceback:") && traceback.contains("job:1"),
                   "runtime error with traceback", message + traceback)
        }
        do { _ = try lua.run(string: "x = = 1"); expect(false, "syntax error") } catch let LuaError.syntax(m, _) {
            expect(m.contains("unexpected symbol"), "syntax error", m)
        }
        do { _ = try lua.evaluate("host_fail()"); expect(false, "swift error") } catch let LuaError.runtime(m, _) {
            expect(m.contains("host says no"), "Swift function error", m)
        }
        do { _ = try lua.evaluate("print"); expect(false, "function result") } catch let e as LuaForkServerError {
            expect(e.message.contains("cannot cross"), "functions do not cross", e.message)
        }
        expect(try lua.evaluate("1 + 1") == [2], "still usable after errors")
        let path = "/tmp/luamp-harness-\(getpid()).lua"
        if let f = fopen(path, "w") { fputs("return arg[0], select('#', ...), ...\n", f); fclose(f) }
        expect(try lua.run(file: path, arguments: ["a", "b"]) == [.string(path), 2, "a", "b"], "run file with arguments")
        unlink(path)
        do { _ = try server.makeRuntime(options: .init(openStandardLibraries: false)); expect(false, "setup error") } catch {
            expect("\(error)".contains("setup needs the base library"), "setup error reaches makeRuntime", "\(error)")
        }
        let limited = try server.makeRuntime(options: .init(libraries: [.base, .string], packagePath: ["/nowhere/?.lua"]))
        expect(try limited.evaluate("io == nil and os == nil and string ~= nil") == [true], "library selection")
        // A runtime killed while a request runs: the call throws, it does not hang.
        let doomed = try server.makeRuntime()
        let outcome = Shared(0)
        let finished = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            do {
                _ = try doomed.run(string: "while true do end")
                outcome.update { $0 = 1 }
            } catch let e as LuaForkServerError {
                outcome.update { $0 = e.message.contains("ended") ? 2 : 3 }
            } catch {
                outcome.update { $0 = 4 }
            }
            finished.signal()
        }
        usleep(200_000)
        kill(doomed.pid, SIGKILL)
        let timedOut = finished.wait(timeout: .now() + 20) == .timedOut
        expect(!timedOut && outcome.value == 2, "killed runtime gives an error", "outcome \(outcome.value)")
        // close() from another thread stops a blocked call at once (the busy process is
        // ended by server.stop() below).
        let busy = try server.makeRuntime()
        let busyOutcome = Shared(0)
        let busyDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            do { _ = try busy.run(string: "while true do end"); busyOutcome.update { $0 = 1 } } catch {
                busyOutcome.update { $0 = error is LuaForkServerError ? 2 : 3 }
            }
            busyDone.signal()
        }
        usleep(200_000)
        busy.close()
        let busyTimedOut = busyDone.wait(timeout: .now() + 20) == .timedOut
        expect(!busyTimedOut && busyOutcome.value == 2, "close() ends a blocked call", "outcome \(busyOutcome.value)")
        expect(try lua.evaluate("'alive'") == ["alive"], "other runtimes unaffected")
        // close() and then deinit: by the deinit, the socket's descriptor number belongs to
        // something else, which the second close must leave alone (it used to shutdown() it).
        do {
            let before = openDescriptors()
            var rt: LuaRemoteRuntime? = try server.makeRuntime()
            let mine = openDescriptors().subtracting(before)
            rt!.close()
            var sv: [Int32] = [-1, -1]
            _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sv)
            let reused = mine.contains(sv[0]) || mine.contains(sv[1])
            rt = nil                                    // deinit: close() again
            let n = send(sv[0], "x", 1, Int32(MSG_NOSIGNAL))
            expect(reused && n == 1, "a second close() leaves a reused descriptor alone",
                   "reused \(reused) (runtime fds \(mine.sorted()), pair \(sv)), send \(n) errno \(errno)")
            close(sv[0]); close(sv[1])
        }
        expect(server.serverThreadCount == 1, "server is single-threaded", "\(server.serverThreadCount)")
        server.stop()
        do { _ = try server.makeRuntime(); expect(false, "stopped") } catch {
            expect("\(error)".contains("stopped"), "makeRuntime after stop", "\(error)")
        }
        do { _ = try lua.evaluate("1"); expect(false, "runtime after stop") } catch {
            expect(error is LuaForkServerError, "runtime after stop throws", "\(error)")
        }
        print("\(passed) passed, \(failed) failed")
        return failed == 0 ? 0 : 1

    case "bench":
        // CASE SECONDS lines for scripts/benchmarks/embedding.lua (compared with Python's forkserver).
        startAppThreads()
        var t0 = monotonic()
        let server = try LuaForkServer.start()
        let first = try server.makeRuntime()
        _ = try first.evaluate("1")
        print("forkserver_first_worker \(monotonic() - t0)")
        t0 = monotonic()
        for _ in 0..<1000 { _ = try first.evaluate("1") }
        print("roundtrip_x1000 \(monotonic() - t0)")
        try first.run(string: "function noop() end")
        t0 = monotonic()
        for _ in 0..<50 { try first.run(string: "local p = mp.Process(noop) p:start() p:join()") }
        print("process_start_join_x50 \(monotonic() - t0)")
        t0 = monotonic()
        for _ in 0..<20 { try server.makeRuntime().close() }
        print("new_runtime_x20 \(monotonic() - t0)")
        let direct = try LuaRuntime()
        t0 = monotonic()
        for _ in 0..<1000 { _ = try direct.evaluate("1") }
        print("# in-process evaluate x1000: \(monotonic() - t0) s")
        server.stop()
        return 0

    case "memory":
        return try memoryCase(Array(CommandLine.arguments.dropFirst(2)))

    case "no-serve":
        // The spawned copy runs this same command, reaches start() and is refused.
        do {
            _ = try LuaForkServer.start(timeout: 20)
            print("started?!")
            return 1
        } catch {
            print("start failed: \(error)")
            return 2
        }

    default:
        print("unknown command '\(command)'")
        return 64
    }
}

/// `memory CASE N FREE SQUEEZE`: converts N-entry tables between Lua and Swift with about FREE
/// MiB left (the file SQUEEZE defines `squeeze(left)`, which fills memory and frees that much).
/// Prints `op ok` or `op failed: <error>`, then `alive` once memory is back. Cases: `to_swift`
/// (evaluate returns a Lua table), `to_lua` (setGlobal of a Swift table), `result` (a Swift
/// function returns one, called under pcall), `argument` (a Lua table passed to one).
func memoryCase(_ args: [String]) throws -> Int32 {
    guard args.count == 4, let n = Int(args[1]), let free = Int(args[2]) else {
        print("usage: memory CASE N FREE SQUEEZE")
        return 64
    }
    let which = args[0]
    let lua = try LuaRuntime()
    _ = try lua.run(string: "dofile(...)", arguments: [.string(args[3])])
    var big = LuaTable()
    if which == "to_lua" || which == "result" {
        for i in 1...n { big[i] = .string("s\(i)") }
    } else {
        _ = try lua.run(string: "big = {} for i = 1, \(n) do big[i] = {i, 's' .. i} end")
    }
    lua.register("host_big") { _ in [.table(big)] }
    lua.register("host_count") { args in [.integer(Int64(args.count))] }
    print("built"); fflush(nil)
    _ = try lua.run(string: "squeeze(\(free))")
    var outcome: String
    do {
        switch which {
        case "to_swift":
            _ = try lua.evaluate("big")
            outcome = "op ok"
        case "to_lua":
            try lua.setGlobal("big", LuaValue.table(big))
            outcome = "op ok"
        case "result", "argument":
            let call = which == "result" ? "host_big()" : "host_count(big)"
            let r = try lua.evaluate("select(2, pcall(function() \(call) return 'op ok' end))")
            outcome = r.first.map { "\($0)" } ?? "?"
            if outcome != "op ok" { outcome = "op failed: " + outcome }
        default:
            print("unknown case '\(which)'")
            return 64
        }
    } catch {
        outcome = "op failed: \(error)"
    }
    _ = try lua.run(string: "ballast = {} collectgarbage()")
    print(outcome)
    print("alive", try lua.evaluate("1 + 1").first.map { "\($0)" } ?? "?")
    return 0
}

do {
    let code = try runCommand()
    fflush(nil)
    exit(code)
} catch {
    print("error: \(error)")
    fflush(nil)
    exit(1)
}
