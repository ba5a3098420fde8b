// ForkServerLoop: the server process — single-threaded, forks one session process per runtime the app asks for.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// The server's main loop. It only waits on the control socket, forks sessions and reaps
/// them, so it stays single-threaded and its forks are safe.
enum ForkServerLoop {
    /// Serves until the app closes the control socket, stops the sessions, and exits. Never returns.
    static func run(control: Int32, setup: (LuaRuntime) throws -> Void) -> Never {
        _ = luamp_set_cloexec(control)
        _ = luamp_hold_fd(control)               // forked sessions close it (luamp_fork)
        luamp_ignore_sigpipe()
        let threads = luamp_thread_count()
        guard threads == 1 else {
            reply(control, "the fork server has \(threads) threads before serving: call LuaForkServer.serveIfRequested(setup:) first thing in main, before anything starts a thread (Dispatch, Task, NIO…)")
            ChildProcess.exitChild(70)
        }
        reply(control, "ok")
        var sessions: [ChildProcess] = []
        serving: while true {
            var p = pollfd(fd: control, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 200)
            sessions.removeAll { !$0.isAlive }   // isAlive reaps the ended ones
            guard p.revents != 0 else { continue }
            var tag: UInt8 = 0
            var fd: Int32 = -1
            let r = luamp_recv_fd(control, &tag, &fd)
            if r <= 0 { break serving }          // the app closed the socket (or went away)
            guard tag == UInt8(ascii: "S"), fd >= 0 else {
                if fd >= 0 { close(fd) }
                continue
            }
            do {
                let session = try ChildProcess.spawn { _ in
                    _ = luamp_hold_fd(fd)        // the script's own workers close it
                    return ForkServerSession.serve(fd: fd, setup: setup)
                }
                sessions.append(session)
            } catch {
                try? WireSocket(fd: fd).send(ForkServerSession.errorReply(error, prefix: "cannot start a fork-server runtime: "))
            }
            close(fd)
        }
        for s in sessions { try? s.terminate() }       // all at once, then wait for each
        for s in sessions { s.stop(grace: 1.0) }
        ChildProcess.exitChild(0)
    }

    /// One SOCK_SEQPACKET message to the app.
    private static func reply(_ control: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { send(control, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}
