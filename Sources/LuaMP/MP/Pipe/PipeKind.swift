// The Lua face of pipes: mp.Pipe([duplex]) and the Connection object (send, recv, poll, close), sendable.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension MPModule {
    /// Installs `mp.Pipe([duplex=true])` → `a, b` and registers `Connection` as sendable.
    /// Stack: [-0, +0].
    static func installPipes(_ s: LuaStack, _ t: Int32) {
        _ = pipeKindRegistered
        PipeMailbox.install()
        s.preservingTop { PipeKind.pushMetatable(s) }     // UserdataBox.push finds it by name
        s.setFunction(t, "Pipe") { s in
            let duplex: Bool
            if s.type(at: 1) == .table {
                s.rawGet(1, field: "duplex")
                duplex = s.optBool(-1, true)
                s.pop()
            } else {
                duplex = s.optBool(1, true)
            }
            let (a, b) = try PipeKind.makePair(duplex: duplex)
            PipeKind.push(s, a)
            PipeKind.push(s, b)
            return 2
        }
    }
}

/// Registers `Connection` with `Handles` once per process (thread-safe, like the arena kinds).
private let pipeKindRegistered: Void = {
    Handles.register(HandleKind(name: PipeKind.name, encode: PipeKind.encode, decode: PipeKind.decode))
}()

/// `Connection` userdata: holds a retained `PipeEnd` (released by `__gc`, which closes it).
enum PipeKind {
    static let name = "Connection"
    static let metatable = "mp.Connection"

    /// Two kernel pipes for duplex (one per direction), one for simplex (`a` receives, `b` sends).
    /// Wraps `pipe2(O_CLOEXEC)`.
    static func makePair(duplex: Bool) throws -> (PipeEnd, PipeEnd) {
        func pipe() throws -> (Int32, Int32) {
            var fds: [Int32] = [-1, -1]
            guard luamp_pipe_cloexec(&fds) == 0 else {
                throw LuaRaise("cannot create a pipe: \(String(cString: strerror(errno)))")
            }
            return (fds[0], fds[1])
        }
        let (r1, w1) = try pipe()
        if !duplex { return (PipeEnd(readFD: r1, writeFD: -1), PipeEnd(readFD: -1, writeFD: w1)) }
        let (r2, w2): (Int32, Int32)
        do { (r2, w2) = try pipe() } catch { close(r1); close(w1); throw error }
        return (PipeEnd(readFD: r2, writeFD: w1), PipeEnd(readFD: r1, writeFD: w2))
    }

    /// Pushes a new Connection userdata owning a +1 reference to `end` (`UserdataBox`).
    /// Stack: [-0, +1].
    static func push(_ s: LuaStack, _ end: PipeEnd) {
        UserdataBox.push(s, end, meta: metatable, uservalues: 1)
    }

    /// The PipeEnd of the Connection at `i`, or nil. Stack: [-0, +0].
    static func toEnd(_ s: LuaStack, _ i: Int32) -> PipeEnd? {
        UserdataBox.get(s, i, meta: metatable, as: PipeEnd.self)
    }

    static func check(_ s: LuaStack, _ i: Int32 = 1) throws -> PipeEnd {
        if let e = toEnd(s, i) { return e }
        throw LuaArgumentError(i, "mp.Connection expected, got \(Handles.kindName(s, at: i).map { "mp." + $0 } ?? s.typeName(at: i))")
    }

    /// `tostring(conn)`: `<Connection duplex fd=5,8>` (read, write descriptors),
    /// `<Connection receive fd=5>`, `<Connection send fd=6>` or `<Connection closed>`.
    static func describe(_ e: PipeEnd) -> String {
        switch (e.readFD >= 0, e.writeFD >= 0) {
        case (true, true): return "<Connection duplex fd=\(e.readFD),\(e.writeFD)>"
        case (true, false): return "<Connection receive fd=\(e.readFD)>"
        case (false, true): return "<Connection send fd=\(e.writeFD)>"
        case (false, false): return "<Connection closed>"
        }
    }

    static func pushMetatable(_ s: LuaStack) {
        guard luaL_newmetatable(s.L, metatable) != 0 else { return }
        let mt = s.top
        s.push(name); s.rawSet(mt, field: "__mpkind")
        s.push(metatable); s.rawSet(mt, field: "__name")
        s.newTable(hashCount: 4)
        s.setFunction(-1, "send") { s in
            let e = try check(s)
            if try EncodedString.withParts(s, at: 2, { try e.send($0, $1) }) { return 0 }
            try SendLog.undoingOnFailure {
                try Codec.withEncoded(s, at: 2, path: "value") { try e.send($0) }
            }
            return 0
        }
        s.setFunction(-1, "recv") { s in
            let e = try check(s)
            // Each frame is read once: its handles' references become this process's holds.
            try e.receive { bytes in try SharedHolds.consuming { try Codec.decode(s, bytes) } }
            return 1
        }
        s.setFunction(-1, "poll") { s in
            let e = try check(s)
            // Python: no argument = do not wait; nil = wait forever; else seconds.
            let deadline: Deadline = s.top < 2 ? .now : try s.deadlineArgument(2)
            s.push(try e.poll(until: deadline))
            return 1
        }
        s.setFunction(-1, "close") { s in try check(s).close(); return 0 }
        s.rawSet(mt, field: "__index")
        s.setFunction(mt, "__tostring") { s in s.push(describe(try check(s))); return 1 }
        // `local conn <close> = ...` closes the end when the scope ends.
        s.setFunction(mt, "__close") { s in try check(s).close(); return 0 }
        s.setFunction(mt, "__gc") { s in
            _ = UserdataBox.take(s, 1, as: PipeEnd.self)
            return 0
        }
    }

    // MARK: handles

    /// Handle: arena id, mailbox token, sender pid, then for the read and the write descriptor:
    /// fd, st_dev, st_ino (so the receiver checks it got the very pipe). Encoding posts the
    /// descriptors to `PipeMailbox` (not in a dry run: `SendLog.dryRun`).
    static func encode(_ s: LuaStack, _ i: Int32) throws -> [UInt8] {
        let e = try check(s, i)
        guard !e.isClosed else { throw LuaRaise("the pipe end is closed") }
        if e.mailboxToken == 0 { e.mailboxToken = PipeMailbox.newToken() }
        var out = [UInt8]()
        out.reserveCapacity(handleBytes)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(Arena.current?.id ?? 0)
        put(e.mailboxToken)
        put(Int32(getpid()))
        for fd in [e.readFD, e.writeFD] {
            var st = stat()
            if fd >= 0 && fstat(fd, &st) == 0 {
                put(fd); put(UInt64(st.st_dev)); put(UInt64(st.st_ino))
            } else {
                put(Int32(-1)); put(UInt64(0)); put(UInt64(0))
            }
        }
        if !SendLog.dryRun { try PipeMailbox.post([e.readFD, e.writeFD].filter { $0 >= 0 }, token: e.mailboxToken) }
        return out
    }

    static let handleBytes = 8 + 8 + 4 + 2 * 20

    /// Takes the descriptors from `PipeMailbox` (or, for a handle whose record was already
    /// taken, copies them from the sender: `dup` in the same process, else `pidfd_getfd`),
    /// checks they are the pipe the handle names, and pushes a Connection. Stack: [-0, +1].
    static func decode(_ s: LuaStack, _ b: UnsafeRawBufferPointer) throws {
        guard b.count == handleBytes else { throw MPError("DecodeError", "bad mp.Connection handle (\(b.count) bytes)") }
        let id = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard let a = Arena.current, a.id == id else { throw MPError("DecodeError", "mp.Connection from another process tree") }
        let token = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let pid = Int32(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: Int32.self))
        var want: [(fd: Int32, dev: UInt64, ino: UInt64)] = []
        for k in 0..<2 {
            let at = 20 + 20 * k
            want.append((Int32(littleEndian: b.loadUnaligned(fromByteOffset: at, as: Int32.self)),
                         UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at + 4, as: UInt64.self)),
                         UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at + 12, as: UInt64.self))))
        }
        let present = want.filter { $0.fd >= 0 }.count
        var fds: [Int32] = []
        defer { for fd in fds where fd >= 0 { close(fd) } }
        if let posted = try PipeMailbox.take(token) {
            var it = posted.makeIterator()
            for w in want { fds.append(w.fd >= 0 ? (it.next() ?? -1) : -1) }
            while let extra = it.next() { close(extra) }
            guard posted.count == present else { throw MPError("DecodeError", "cannot receive a pipe end: its record holds \(posted.count) descriptors") }
        } else {
            for w in want {
                if w.fd < 0 { fds.append(-1); continue }
                let copy = pid == getpid() ? fcntl(w.fd, F_DUPFD_CLOEXEC, 0) : luamp_fd_from_process(pid, w.fd)
                guard copy >= 0 else {
                    let why = errno == ESRCH ? "the sending process (pid \(pid)) has exited"
                        : errno == EBADF ? "the sender closed it"
                        : String(cString: strerror(errno))
                    throw MPError("DecodeError", "cannot receive a pipe end: it was already received (one send delivers it once), and copying it from the sender failed: \(why)")
                }
                fds.append(copy)
            }
        }
        for (fd, w) in zip(fds, want) where fd >= 0 {
            var st = stat()
            guard fstat(fd, &st) == 0, UInt64(st.st_dev) == w.dev, UInt64(st.st_ino) == w.ino else {
                throw MPError("DecodeError", "cannot receive a pipe end: it was already received (one send delivers it once), and the sender no longer holds it")
            }
        }
        push(s, PipeEnd(readFD: fds[0], writeFD: fds[1]))
        fds = []
    }
}
