// LuaRemoteRuntime: the app's handle on a runtime living in a fork-server process (same calls as LuaRuntime).
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A Lua runtime in its own single-threaded process, made by `LuaForkServer.makeRuntime()`.
///
/// It offers `LuaRuntime`'s calls; each one sends a request over a socket and waits for the
/// reply, so scripts run there may start processes and pools even though the app has threads.
/// Arguments and results are copied: nil, booleans, numbers, strings and tables of them cross;
/// a function, userdata or thread does not (`LuaForkServerError`). Lua errors arrive as
/// `LuaError` with their message and traceback.
///
/// Thread-safe: calls from several threads are serialized. Closing the handle (or dropping it)
/// ends the process after the Lua `finish` step (non-daemon children joined).
public final class LuaRemoteRuntime: @unchecked Sendable {
    /// The runtime process's id.
    public let pid: Int32
    private let server: LuaForkServer          // keeps the server alive while a runtime is
    private let socket: WireSocket
    private let lock = WireLock()
    private var closed = false
    /// Set by the first `close()` (before it takes `lock`).
    private let closing = Atomic<Bool>(false)

    init(server: LuaForkServer, fd: Int32, options: LuaRuntime.Options) throws {
        self.server = server
        self.socket = WireSocket(fd: fd)
        var w = WireWriter()
        w.u8(WireRequest.open.rawValue)
        options.write(to: &w)
        do {
            try socket.send(w)
            guard let reply = try socket.receive() else {
                throw LuaForkServerError("the fork server (pid \(server.pid)) closed the runtime before it started")
            }
            let values = try ForkServerSession.results(of: reply)
            guard case .integer(let p)? = values.first else { throw LuaForkServerError("malformed fork-server reply") }
            pid = Int32(p)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    deinit { close() }

    /// Runs a chunk of Lua source (see `LuaRuntime.run(string:name:arguments:)`).
    /// - Throws: `LuaError`, or `LuaForkServerError` when the runtime's process is gone.
    @discardableResult
    public func run(string: String, name: String = "=(string)", arguments: [LuaValue] = []) throws -> [LuaValue] {
        try request(.runString) { w in w.string(string); w.string(name); try w.values(arguments) }
    }

    /// Runs a script file with arguments (`arg` and `...`), see `LuaRuntime.run(file:arguments:)`.
    /// The path is resolved in the runtime's process (same working directory as the app had
    /// when the server started).
    @discardableResult
    public func run(file: String?, arguments: [String] = []) throws -> [LuaValue] {
        try request(.runFile) { w in w.u8(file == nil ? 0 : 1); w.string(file ?? ""); w.strings(arguments) }
    }

    /// Evaluates an expression or a chunk and returns its values (see `LuaRuntime.evaluate(_:)`).
    public func evaluate(_ code: String) throws -> [LuaValue] {
        try request(.evaluate) { w in w.string(code) }
    }

    /// Evaluates and converts the first result.
    public func evaluate<T: LuaValueConvertible>(_ code: String, as type: T.Type) throws -> T {
        try T(luaValue: evaluate(code).first ?? .nil)
    }

    /// Calls the global function `name`.
    public func call(global name: String, _ arguments: [LuaValue] = []) throws -> [LuaValue] {
        try request(.callGlobal) { w in w.string(name); try w.values(arguments) }
    }

    /// The global `name` (raw access).
    public func global(_ name: String) throws -> LuaValue {
        try request(.getGlobal) { w in w.string(name) }.first ?? .nil
    }

    /// The global `name` converted to `T`.
    public func global<T: LuaValueConvertible>(_ name: String, as type: T.Type) throws -> T {
        try T(luaValue: global(name))
    }

    /// Sets the global `name` (raw access).
    public func setGlobal(_ name: String, _ value: some LuaValueRepresentable) throws {
        let v = value.luaValue
        _ = try request(.setGlobal) { w in w.string(name); try w.value(v) }
    }

    /// Ends the script the way `LuaRuntime.finish()` does (joins non-daemon children,
    /// terminates daemons and pools); the runtime stays usable.
    public func finish() throws {
        _ = try request(.finish) { _ in }
    }

    /// Ends the runtime's process (after its `finish` step). Later calls throw. Idempotent.
    /// A call in progress on another thread stops waiting and throws at once; the process
    /// exits when its current Lua code returns (use `LuaForkServer.stop()` to end it sooner).
    public func close() {
        // Only the first close may touch the descriptor: after it, the number may belong to
        // anything the app opened since. `closing` is atomic because `lock` may be held by a
        // thread blocked in `request`, which only the shutdown wakes.
        guard !closing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = shutdown(socket.fd, Int32(SHUT_RDWR))    // wakes a thread blocked in `request`
        lock.withLock {
            closed = true
            Glibc.close(socket.fd)
        }
    }

    /// Sends one request and waits for its reply.
    private func request(_ kind: WireRequest, _ body: (inout WireWriter) throws -> Void) throws -> [LuaValue] {
        var w = WireWriter()
        w.u8(kind.rawValue)
        try body(&w)
        return try lock.withLock {
            guard !closed else { throw LuaForkServerError("the runtime was closed") }
            do {
                try socket.send(w)
                guard let reply = try socket.receive() else {
                    throw LuaForkServerError("the fork-server runtime (pid \(pid)) ended")
                }
                return try ForkServerSession.results(of: reply)
            } catch let e as LuaForkServerError where e.message.hasPrefix("fork-server connection") {
                throw LuaForkServerError("the fork-server runtime (pid \(pid)) ended: \(e.message)")
            }
        }
    }
}
