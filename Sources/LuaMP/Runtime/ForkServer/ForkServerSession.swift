// ForkServerSession: one fork-server runtime — a single-threaded process forked by the server that runs an app's requests.
#if canImport(Glibc)
import Glibc
#endif

/// The body of a session process: creates a `LuaRuntime` with the options the app sent, lets
/// the app's `setup` register its Swift functions, then answers requests until the app closes
/// the connection. Runs in a child forked from the (single-threaded) server, so scripts may
/// start processes and pools.
enum ForkServerSession {
    /// Serves one connection. Returns the exit status for the session process.
    static func serve(fd: Int32, setup: (LuaRuntime) throws -> Void) -> Int32 {
        let socket = WireSocket(fd: fd)
        // The first request opens the runtime.
        let runtime: LuaRuntime
        do {
            guard let m = try socket.receive(),
                  let options = try m.read({ r -> LuaRuntime.Options? in
                      guard try r.u8() == WireRequest.open.rawValue else { return nil }
                      return try LuaRuntime.Options(reading: &r)
                  }) else { return 0 }
            runtime = try LuaRuntime(options: options)
            try setup(runtime)
            var w = WireWriter()
            w.u8(WireReply.values.rawValue)
            try w.values([.integer(Int64(getpid()))])
            try socket.send(w)
        } catch {
            try? socket.send(errorReply(error, prefix: "cannot create a fork-server runtime: "))
            return 1
        }
        while true {
            let request: WireMessage
            do {
                guard let r = try socket.receive() else { break }     // the app closed it: done
                request = r
            } catch {
                break
            }
            var reply: WireWriter
            do {
                reply = WireWriter()
                let results = try handle(request, runtime)
                reply.u8(WireReply.values.rawValue)
                try reply.values(results)
            } catch {
                reply = errorReply(error, prefix: "")
            }
            fflush(nil)                          // the script's output before the reply
            do { try socket.send(reply) } catch { break }
        }
        runtime.finish()
        return 0
    }

    /// Runs one request and returns its results.
    private static func handle(_ request: WireMessage, _ lua: LuaRuntime) throws -> [LuaValue] {
        try request.read { r in
            guard let kind = WireRequest(rawValue: try r.u8()) else { throw LuaForkServerError("unknown fork-server request") }
            switch kind {
            case .open:
                throw LuaForkServerError("the runtime is already open")
            case .runString:
                let source = try r.wireString(), name = try r.wireString()
                return try lua.run(string: source, name: name, arguments: try r.wireValues())
            case .runFile:
                let hasFile = try r.u8() != 0
                let file = try r.wireString()
                return try lua.run(file: hasFile ? file : nil, arguments: try r.wireStrings())
            case .evaluate:
                return try lua.evaluate(try r.wireString())
            case .callGlobal:
                let name = try r.wireString()
                return try lua.call(global: name, try r.wireValues())
            case .getGlobal:
                return [lua[try r.wireString()]]
            case .setGlobal:
                let name = try r.wireString()
                lua[name] = try r.wireValue()
                return []
            case .finish:
                lua.finish()
                return []
            }
        }
    }

    /// An error reply: the `LuaError` case with message and traceback, or any other error's text.
    static func errorReply(_ error: Error, prefix: String) -> WireWriter {
        var w = WireWriter()
        switch error {
        case LuaError.syntax(let m, let incomplete):
            w.u8(WireReply.syntaxError.rawValue); w.string(m); w.u8(incomplete ? 1 : 0)
        case LuaError.runtime(let m, let tb):
            w.u8(WireReply.runtimeError.rawValue); w.string(m); w.string(tb)
        case LuaError.memory(let m):
            w.u8(WireReply.memoryError.rawValue); w.string(m)
        case LuaError.file(let m):
            w.u8(WireReply.fileError.rawValue); w.string(m)
        default:
            w.u8(WireReply.otherError.rawValue); w.string(prefix + String(describing: error))
        }
        return w
    }

    /// Turns a reply into results, or throws the error it carries (app side).
    static func results(of reply: WireMessage) throws -> [LuaValue] {
        try reply.read { r in
            guard let kind = WireReply(rawValue: try r.u8()) else { throw LuaForkServerError("unknown fork-server reply") }
            switch kind {
            case .values: return try r.wireValues()
            case .syntaxError:
                let m = try r.wireString()
                throw LuaError.syntax(message: m, incompleteInput: try r.u8() != 0)
            case .runtimeError:
                let m = try r.wireString()
                throw LuaError.runtime(message: m, traceback: try r.wireString())
            case .memoryError: throw LuaError.memory(try r.wireString())
            case .fileError: throw LuaError.file(try r.wireString())
            case .otherError: throw LuaForkServerError(try r.wireString())
            }
        }
    }
}
