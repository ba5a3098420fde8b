// LuaForkServer: the public fork-server start mode — scripts that fork, run from apps that have threads.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// Runs Lua scripts that start processes and pools from an app that has threads.
///
/// `fork()` in a process with more than one thread can deadlock the child (a lock another
/// thread held is copied locked), so luamp refuses to start a process or pool when the
/// calling process has other threads — and every real app has them once it touches Dispatch,
/// Swift concurrency or SwiftNIO. A fork server keeps the forking in a process that never had
/// a thread:
///
/// 1. The first line of `main` is `LuaForkServer.serveIfRequested { lua in … }`. In the app it
///    returns at once. In the copy of the app that `start()` spawns, it never returns: that
///    process becomes the server.
/// 2. `LuaForkServer.start()`, callable at any time and from any thread, `posix_spawn`s the
///    app's own executable (`/proc/self/exe`, same arguments) with a marker in its
///    environment. `posix_spawn` is safe in a threaded process; nothing here calls `fork`
///    in the app.
/// 3. `server.makeRuntime()` asks the server to fork a fresh, single-threaded process that
///    creates a `LuaRuntime`, runs `setup` on it (register your Swift functions there) and
///    then executes what the returned `LuaRemoteRuntime` sends it. Values cross a socket pair.
///
/// ```swift
/// LuaForkServer.serveIfRequested { lua in            // first thing in main
///     lua.register("host_square") { args in [.integer(try args.argument(0, as: Int64.self) * 2)] }
/// }
/// // … the app starts its threads …
/// let server = try LuaForkServer.start()
/// let lua = try server.makeRuntime()
/// try lua.run(string: "local p = mp.Process(function() print(host_square(21)) end); p:start(); p:join()")
/// ```
///
/// The server and its runtimes share the app's standard input, output and error. When the app
/// exits (or calls `stop()`), the server ends, and with it every runtime and worker it started.
public final class LuaForkServer: @unchecked Sendable {
    /// The server's process id.
    public let pid: Int32
    /// The app's end of the control socket (SOCK_SEQPACKET: each request is one atomic message).
    private let control: Int32
    private let lock = WireLock()
    private var stopped = false

    /// The environment variable that marks the spawned copy of the app as the server.
    static let marker = "LUAMP_FORK_SERVER"

    private init(pid: Int32, control: Int32) {
        self.pid = pid
        self.control = control
    }

    deinit { stop() }

    // MARK: the server side

    /// Call this first thing in `main`, before anything can start a thread. In the app it
    /// returns immediately. In the process that `start()` spawned it never returns: it serves
    /// runtimes until the app goes away, then exits.
    /// - Parameter setup: runs in every new runtime's process before it takes requests:
    ///   register Swift functions, set globals, `require` modules. Throwing fails that
    ///   `makeRuntime()` with the error's text.
    public static func serveIfRequested(setup: (LuaRuntime) throws -> Void = { _ in }) {
        guard let value = getenv(marker) else { return }
        let fd = Int32(atoi(value))
        unsetenv(marker)
        ForkServerLoop.run(control: fd, setup: setup)
    }

    // MARK: the app side

    /// Starts a server: `posix_spawn`s this executable with the same arguments, and waits
    /// until it reports that it serves.
    /// - Parameter timeout: seconds to wait for the server to come up.
    /// - Returns: the running server.
    /// - Throws: `LuaForkServerError` when it cannot be spawned, exits, or does not answer in
    ///   time — typically because `main` does not call `serveIfRequested(setup:)` first
    ///   (the copy then runs the app instead, and is killed).
    public static func start(timeout: Double = 30) throws -> LuaForkServer {
        if getenv(marker) != nil {
            throw LuaForkServerError("LuaForkServer.start() called in a process spawned to be the fork server: call LuaForkServer.serveIfRequested(setup:) first thing in main")
        }
        var sv: [Int32] = [-1, -1]
        guard luamp_socketpair(1, &sv) == 0 else { throw LuaForkServerError.errno("cannot create the fork-server socket") }
        let target: Int32 = sv[1] == 3 ? 4 : 3
        let args = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let pid = luamp_spawn_self(&argv, "\(marker)=\(target)", sv[1], target)
        let spawnErrno = errno
        close(sv[1])
        guard pid > 0 else {
            close(sv[0])
            throw LuaForkServerError("cannot start the fork server: posix_spawn failed: \(String(cString: strerror(spawnErrno)))")
        }
        let server = LuaForkServer(pid: pid, control: sv[0])
        try server.awaitReady(timeout: timeout)
        return server
    }

    /// Creates a runtime in a new process forked by the server. Thread-safe.
    /// - Parameter options: the runtime's options (libraries, search paths, `mp`).
    /// - Returns: a handle whose calls run in that process.
    /// - Throws: `LuaForkServerError` when the server is gone or the process could not start,
    ///   or the error `setup` threw.
    public func makeRuntime(options: LuaRuntime.Options = .init()) throws -> LuaRemoteRuntime {
        var sv: [Int32] = [-1, -1]
        guard luamp_socketpair(0, &sv) == 0 else { throw LuaForkServerError.errno("cannot create a runtime socket") }
        let sent = lock.withLock { stopped ? -2 : luamp_send_fd(control, UInt8(ascii: "S"), sv[1]) }
        let sendErrno = errno
        close(sv[1])
        guard sent == 1 else {
            close(sv[0])
            if sent == -2 { throw LuaForkServerError("the fork server was stopped") }
            throw LuaForkServerError("the fork server (pid \(pid)) is not running: \(String(cString: strerror(sendErrno)))")
        }
        return try LuaRemoteRuntime(server: self, fd: sv[0], options: options)
    }

    /// Threads in the server process (1 while it serves, by construction), or -1 when it is gone.
    public var serverThreadCount: Int { Int(luamp_thread_count_of(pid)) }

    /// Ends the server and every runtime it made: they get SIGTERM, then SIGKILL after a
    /// second. Waits for the server to exit. Runtime handles then throw. Idempotent.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            if stopped { return false }
            stopped = true
            return true
        }
        guard first else { return }
        close(control)                           // the server sees end-of-file and shuts down
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    /// Waits for the server's first message: `ok`, or the text of why it cannot serve.
    private func awaitReady(timeout: Double) throws {
        let deadline = Deadline(seconds: timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            var p = pollfd(fd: control, events: Int16(POLLIN), revents: 0)
            let slice = deadline.nextSlice
            if slice == 0 {
                _ = kill(pid, SIGKILL)
                stop()
                throw LuaForkServerError("the fork server (pid \(pid)) did not start within \(timeout) s: does main call LuaForkServer.serveIfRequested(setup:) before anything else?")
            }
            let r = poll(&p, 1, Deadline.pollMilliseconds(slice))
            if r < 0 && errno != EINTR { throw LuaForkServerError.errno("poll") }
            if r > 0 {
                let n = buf.withUnsafeMutableBytes { recv(control, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                let text = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
                if text == "ok" { return }
                stop()
                throw LuaForkServerError(text.isEmpty ? "the fork server (pid \(pid)) exited before it served" : text)
            }
        }
    }
}

/// What went wrong with a fork server or one of its runtimes (Lua errors stay `LuaError`).
public struct LuaForkServerError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func errno(_ what: String) -> LuaForkServerError {
        LuaForkServerError("\(what): \(String(cString: strerror(Glibc.errno)))")
    }
}

/// A pthread mutex behind a stable pointer (never in a Swift stored property), for the
/// app-side handles that several app threads may share.
final class WireLock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        m.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(m, nil) == 0)
    }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        precondition(pthread_mutex_lock(m) == 0)
        defer { precondition(pthread_mutex_unlock(m) == 0) }
        return try body()
    }
}
