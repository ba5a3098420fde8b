// ChildProcess: fork a child that runs a Swift body, then join, signal and reap it (used by Process and Pool).
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A forked child process of this process: the one way luamp creates processes.
///
/// `spawn` forks (after `fflush(NULL)`, with the child's signals reset — SIGINT ignored on
/// request —, `PR_SET_PDEATHSIG` armed
/// and the `getppid()` race checked — see `luamp_fork`) and runs `body` in the child; whatever
/// `body` returns becomes the exit status via `fflush(NULL); _exit(status)`. The child never
/// returns into the parent's code. The parent keeps the pid, a pidfd (so `join(timeout:)`
/// polls without signals) and the read end of a small *status pipe* on which the child may
/// `report` a message (for example an uncaught error) that `reportedMessage` returns after reaping.
/// The child's report is a blocking write that may not fit the pipe (a pipe gets a single page
/// once the user is past `pipe-user-pages-soft`), so every wait here drains the pipe while the
/// child runs (`join` polls it with the pidfd; `isAlive` and `stop` read it), and a caller that
/// waits for a child some other way polls `statusDescriptor` and calls `drainStatus`.
///
/// Rules for users (Process, Pool):
/// - Every spawned child must end up reaped: call `join()` (or `join(timeout:)` until it
///   returns true); `terminate`/`kill` only send signals. The object closes its descriptors
///   when reaped, and on `deinit` (an unreaped child is then killed and reaped, never leaked).
/// - Only the process that spawned a child may join or signal it (`isOwnedHere`). A forked
///   child closes every descriptor its parent held for other children before `body` runs, and
///   inherited `ChildProcess` objects become inert there (never waited for, signalled or closed).
/// - Spawning refuses (throws) when the process has more than one thread: fork in a threaded
///   process can deadlock the child (docs/processes.md, "Threads and fork"), and a clear error beats a hung worker.
final class ChildProcess {
    /// The child's process id.
    let pid: pid_t
    /// pidfd of the child, or -1 (kernel without pidfd_open, or after reaping).
    private(set) var pidfd: Int32
    /// Read end of the status pipe (non-blocking), or -1.
    private var statusFD: Int32
    /// The process that spawned it; only that one may wait for or signal it.
    private let ownerPID: pid_t
    /// Exit code once reaped: `n` for `_exit(n)`, `-N` after signal N.
    private(set) var exitCode: Int32?
    /// What the child sent with `ChildContext.report`, complete once it was reaped.
    private(set) var reportedMessage: String?
    /// Status bytes read so far; the child closed its end (or ended) once `statusEOF`.
    private var statusBytes: [UInt8] = []
    private var statusEOF = false
    /// When it was forked (wall µs), while tracing: its lifetime span is written when it is reaped.
    private var tracedSince: Int64 = 0
    /// Stopped on purpose (`stop`): its end is not a death in the trace.
    private var tracedStop = false

    private init(pid: pid_t, pidfd: Int32, statusFD: Int32) {
        self.pid = pid
        self.pidfd = pidfd
        self.statusFD = statusFD
        self.ownerPID = getpid()
        if Trace.on { tracedSince = Trace.now() }
        if pidfd >= 0 { _ = luamp_hold_fd(pidfd) }
        if statusFD >= 0 { _ = luamp_hold_fd(statusFD) }
    }

    deinit {
        if exitCode == nil, isOwnedHere {
            _ = Glibc.kill(pid, SIGKILL)
            var code: Int32 = 0
            _ = luamp_reap(pid, 1, &code)
            SharedHolds.childReaped(pid)
        }
        closeDescriptors()
    }

    /// What a child's body can do besides computing its exit status.
    struct ChildContext {
        fileprivate let statusFD: Int32
        /// Sends `message` to the parent (`reportedMessage` once reaped); at most 60 KiB are
        /// kept. The write blocks while the pipe is full, until the parent drains it (every
        /// wait for the child does). Call once.
        func report(_ message: String) {
            var bytes = Array(message.utf8.prefix(60 * 1024))
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeMutableBytes { write(statusFD, $0.baseAddress! + off, $0.count - off) }
                if n < 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    /// Forks a child running `body`.
    /// - Parameters:
    ///   - ignoreInterrupts: the child ignores SIGINT from its first instruction on (pool
    ///     workers: a terminal's Ctrl-C reaches the whole process group, and the host stops its
    ///     workers itself). Set in `luamp_fork` before signals are unblocked, so no SIGINT can
    ///     kill the child between the fork and its body; false gives SIGINT its default action.
    ///   - body: runs in the child only; returns the exit status (0–255). It may also end the
    ///     process itself with `ChildProcess.exitChild`, never by returning into parent code.
    /// - Returns: the child, in the parent.
    /// - Throws: `LuaRaise` when the process has other threads, or fork/pipe fail
    ///   (`EAGAIN`: too many processes, `ENOMEM`).
    /// Wraps `luamp_fork` (fork), `pipe2`, `pidfd_open`.
    static func spawn(ignoreInterrupts: Bool = false, _ body: (ChildContext) -> Int32) throws -> ChildProcess {
        try checkSingleThreaded()
        // Room for the pidfd and status pipe the parent will hold (ChildProcess.init), so every
        // later child is sure to close them.
        guard luamp_hold_reserve(2) == 0 else { throw LuaError.memory("not enough memory") }
        var fds: [Int32] = [-1, -1]
        guard luamp_pipe_cloexec(&fds) == 0 else {
            throw LuaRaise("cannot start a process: pipe failed: \(String(cString: strerror(errno)))")
        }
        let pid = luamp_fork(ignoreInterrupts ? 1 : 0)
        if pid == 0 {
            close(fds[0])
            let code = body(ChildContext(statusFD: fds[1]))
            exitChild(code)
        }
        let err = errno
        close(fds[1])
        if pid < 0 {
            close(fds[0])
            throw LuaRaise("cannot start a process: fork failed: \(String(cString: strerror(err)))")
        }
        // The status pipe is read at reap time and must never block the parent.
        if fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0 {
            let err = errno
            close(fds[0])
            Glibc.kill(pid, SIGKILL)
            var code: Int32 = 0
            _ = luamp_reap(pid, 1, &code)
            throw LuaRaise("cannot start a process: fcntl(O_NONBLOCK) failed: \(String(cString: strerror(err)))")
        }
        var pfd = luamp_pidfd_open(pid)
        if pfd >= 0 && fcntl(pfd, F_SETFD, FD_CLOEXEC) < 0 {
            close(pfd)                     // without it, join polls waitpid instead
            pfd = -1
        }
        SharedHolds.childStarted(pid)
        return ChildProcess(pid: pid, pidfd: pfd, statusFD: fds[0])
    }

    /// Ends the calling child: `fflush(NULL); _exit(code)`. Never returns.
    static func exitChild(_ code: Int32) -> Never {
        SharedHolds.releaseAtExit()          // a normal end lets go of the arena objects it held
        Trace.close()
        luamp_label_finish()
        luamp_child_exit(code)
    }

    /// Throws unless this process has exactly one thread (fork of a threaded process can
    /// deadlock the child on a lock another thread held).
    static func checkSingleThreaded() throws {
        let n = luamp_thread_count()
        if n > 1 {
            throw LuaRaise("cannot start a process: this process has \(n) threads, and fork() is only safe with 1 (luamp uses no threads; something in the host or a loaded C module started them); an app with threads runs such scripts through LuaForkServer (see docs/embedding.md)")
        }
    }

    /// True in the process that spawned the child.
    var isOwnedHere: Bool { ownerPID == getpid() }

    /// True until the child has been reaped. Reaps it if it has ended (never blocks).
    var isAlive: Bool {
        guard exitCode == nil, isOwnedHere else { return false }
        return !tryReap(block: false)
    }

    /// Waits for the child to end and reaps it.
    /// - Parameter timeout: seconds; nil waits as long as it takes.
    /// - Returns: true once the child has been reaped, false if `timeout` passed first.
    /// - Throws: `LuaRaise("interrupted!")` when Ctrl-C arrives while waiting (the child is
    ///   not reaped; call again or kill it). The interrupt is taken (`luamp_take_interrupt`):
    ///   `ProcessTree.finish` notices a Ctrl-C during its own joins by this error.
    /// Polls the pidfd in `Deadline.wait`'s ≤ 100 ms slices (no signals), then `waitpid`.
    /// Without a pidfd it polls `waitpid(WNOHANG)` every 1–10 ms.
    func join(timeout: Double? = nil) throws -> Bool {
        if exitCode != nil { return true }
        guard isOwnedHere else { throw LuaRaise("can only join a child process") }
        var nap: UInt64 = 1_000_000
        // The interrupt is taken here, before each sleep, not by `Deadline.wait`'s check (which
        // a host interpreter may decline to claim): see above.
        return try Deadline(seconds: timeout).wait(interrupt: {}) { slice in
            if tryReap(block: false) { return true }
            if luamp_take_interrupt() != 0 {
                // Taken (flag and hook), so a pcall around the join catches it once. Uncaught,
                // it ends the script with status 130 and `finish` stops the children.
                throw LuaRaise("interrupted!")
            }
            Clock.idle(long: false)
            if slice == 0 { return false }
            if pidfd >= 0 {
                // The status pipe too: a child blocked writing its report never ends otherwise.
                let status = statusDescriptor
                var p = (pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0),
                         pollfd(fd: status, events: Int16(POLLIN), revents: 0))
                let ms = Deadline.pollMilliseconds(slice)
                _ = withUnsafeMutablePointer(to: &p) {
                    $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, status >= 0 ? 2 : 1, ms) }
                }                                      // EINTR: the interrupt flag is checked next
                if p.1.revents != 0 { drainStatus() }
            } else {
                let ns = min(nap, slice)
                var ts = timespec(tv_sec: 0, tv_nsec: Int(ns))
                _ = nanosleep(&ts, nil)
                nap = min(nap * 2, 10_000_000)
            }
            return tryReap(block: false)
        }
    }

    /// Sends `signal` unless the child was already reaped (so a recycled pid is never hit).
    /// - Throws: `LuaRaise` when called from a process that did not spawn the child.
    func send(signal: Int32) throws {
        guard isOwnedHere else { throw LuaRaise("can only signal a child process") }
        if exitCode == nil { _ = Glibc.kill(pid, signal) }
    }

    /// SIGTERM.
    func terminate() throws { try send(signal: SIGTERM) }
    /// SIGKILL.
    func kill() throws { try send(signal: SIGKILL) }
    /// SIGINT (what Ctrl-C sends).
    func interrupt() throws { try send(signal: SIGINT) }

    /// Stops the child for good: SIGTERM, up to `grace` seconds, then SIGKILL; always reaps.
    /// Never throws and ignores Ctrl-C (cleanup must finish).
    func stop(grace: Double = 1.0) {
        guard exitCode == nil, isOwnedHere else { return }
        if Trace.on && tryReap(block: false) { return }      // it had ended: a death, not a stop
        tracedStop = true
        _ = Glibc.kill(pid, SIGTERM)
        let deadline = Deadline(seconds: grace)
        while !tryReap(block: false) {
            if deadline.hasPassed {
                _ = Glibc.kill(pid, SIGKILL)
                _ = tryReap(block: true)
                return
            }
            var ts = timespec(tv_sec: 0, tv_nsec: 2_000_000)
            _ = nanosleep(&ts, nil)
        }
    }

    /// The status pipe's read end while the child may still write to it, else -1: callers that
    /// wait for several children in one `poll` add it and call `drainStatus` when it is readable.
    var statusDescriptor: Int32 { statusEOF ? -1 : statusFD }

    /// Reads what the child has reported so far, without blocking (the child may be blocked
    /// writing a report larger than the pipe).
    func drainStatus() {
        guard statusFD >= 0, !statusEOF else { return }
        // A stack buffer (1 KiB: the most withUnsafeTemporaryAllocation always keeps on the stack):
        // a fresh heap array per reap costs a malloc and a page fault.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buf in
            while true {
                let n = read(statusFD, buf.baseAddress, buf.count)
                if n > 0 { statusBytes.append(contentsOf: UnsafeBufferPointer(rebasing: buf[0..<n])); continue }
                if n == 0 { statusEOF = true }
                if n < 0 && errno == EINTR { continue }
                break
            }
        }
    }

    // MARK: internals

    /// waitpid; on success records the exit code, reads the status pipe, closes descriptors.
    /// Drains the status pipe first, so a child blocked on its report can finish.
    private func tryReap(block: Bool) -> Bool {
        if exitCode != nil { return true }
        if !block { drainStatus() }
        var code: Int32 = 0
        let r = luamp_reap(pid, block ? 1 : 0, &code)
        if r == 0 { return false }
        // r < 0 (ECHILD) means someone else reaped it: report it as lost to SIGKILL's code.
        exitCode = r > 0 ? code : -SIGKILL
        if tracedSince > 0 { Trace.processEnded(pid, since: tracedSince, code: exitCode!, stopped: tracedStop) }
        readStatusPipe()
        closeDescriptors()
        SharedHolds.childReaped(pid)
        return true
    }

    private func readStatusPipe() {
        drainStatus()
        if !statusBytes.isEmpty { reportedMessage = String(decoding: statusBytes, as: UTF8.self) }
        statusBytes = []
    }

    /// Closes the pidfd and the status pipe — only in the owner: in a forked child these numbers
    /// were closed at fork and may name other files by now.
    private func closeDescriptors() {
        let owned = isOwnedHere
        for fd in [pidfd, statusFD] where fd >= 0 {
            if owned { luamp_release_fd(fd); close(fd) }
        }
        pidfd = -1
        statusFD = -1
    }
}

@available(*, unavailable, message: "processes are managed from the thread that owns the Lua state")
extension ChildProcess: Sendable {}
