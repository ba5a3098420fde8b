// Descriptors: naming an open descriptor so another process of the tree can obtain the same open file.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// An open descriptor as a message names it: the sending process, the number there, the file's
/// device and inode (so the receiver can tell it got that very file and not a reused number) and
/// its status flags (access mode, append).
struct DescriptorName: Equatable {
    var pid: Int32
    var fd: Int32
    var dev: UInt64
    var ino: UInt64
    var flags: Int32

    static let size = 28

    /// Names `fd` of this process; nil (errno set) when it is not open.
    init?(fd: Int32) {
        var st = stat()
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fstat(fd, &st) == 0 else { return nil }
        self.init(pid: getpid(), fd: fd, dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), flags: flags)
    }

    init(pid: Int32, fd: Int32, dev: UInt64, ino: UInt64, flags: Int32) {
        (self.pid, self.fd, self.dev, self.ino, self.flags) = (pid, fd, dev, ino, flags)
    }

    /// The `size` bytes of a message (little-endian).
    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(DescriptorName.size)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        put(pid); put(fd); put(dev); put(ino); put(flags)
        return out
    }

    init?(bytes b: UnsafeRawBufferPointer) {
        guard b.count == DescriptorName.size else { return nil }
        func get<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T { T(littleEndian: b.loadUnaligned(fromByteOffset: at, as: T.self)) }
        self.init(pid: get(0, Int32.self), fd: get(4, Int32.self), dev: get(8, UInt64.self),
                  ino: get(16, UInt64.self), flags: get(24, Int32.self))
    }

    /// The `fdopen` mode matching the access flags: "r", "w", "a", "r+" or "a+".
    var mode: String {
        let append = flags & O_APPEND != 0
        switch flags & O_ACCMODE {
        case O_RDONLY: return "r"
        case O_WRONLY: return append ? "a" : "w"
        default: return append ? "a+" : "r+"
        }
    }
}

/// Obtaining a named descriptor in the receiving process.
///
/// The one place luamp turns a `DescriptorName` into a descriptor of its own: within one process a
/// `dup`; from another process of the tree `pidfd_getfd` (the same open file description, so the
/// file position is shared, as with `dup`); and when that is refused (the sender has exited, or
/// ptrace rules forbid it) the copy this process inherited at fork, if it has the same number,
/// file and access mode — the case of every process started after the file was opened.
enum Descriptors {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A new close-on-exec descriptor for the open file `n` names.
    static func obtain(_ n: DescriptorName) throws(Failure) -> Int32 {
        if n.pid == getpid() {
            guard DescriptorName(fd: n.fd).map({ $0.dev == n.dev && $0.ino == n.ino }) == true else {
                throw Failure(description: "the sender closed it before it was received")
            }
            let fd = fcntl(n.fd, F_DUPFD_CLOEXEC, 0)
            guard fd >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
            return fd
        }
        let copy = luamp_fd_from_process(n.pid, n.fd)
        let why = errno
        if copy >= 0 {
            if let got = DescriptorName(fd: copy), got.dev == n.dev, got.ino == n.ino { return copy }
            close(copy)
        }
        if let mine = DescriptorName(fd: n.fd), mine.dev == n.dev, mine.ino == n.ino,
           mine.flags & O_ACCMODE == n.flags & O_ACCMODE {
            let fd = fcntl(n.fd, F_DUPFD_CLOEXEC, 0)
            if fd >= 0 { return fd }
        }
        if copy >= 0 || why == EBADF { throw Failure(description: "the sender closed it before it was received") }
        if why == ESRCH { throw Failure(description: "the sending process (pid \(n.pid)) has exited") }
        throw Failure(description: "cannot copy descriptor \(n.fd) of pid \(n.pid): \(String(cString: strerror(why)))")
    }
}
