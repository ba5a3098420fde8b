// ShmTracker: unlinks the segments a script created and never unlinked — at its end, or after a kill -9 at the next start.
#if canImport(Glibc)
import Glibc
#endif

/// Python's resource tracker, without its extra process and without its attach bug.
///
/// The **root** of a process tree (the process that installed `mp` first: the `luamp` running
/// the script, or the embedding app) keeps a record file `/dev/shm/luamp-tracker-<pid>-<start>`
/// (`<start>` is the root's start time from `/proc/<pid>/stat`, so a reused pid is never
/// mistaken for it). Every process of the tree appends `+name` when it creates a tracked
/// segment and `-name` when it unlinks one (`O_APPEND` writes of one short line are atomic).
///
/// - When the root exits (`exit`, `os.exit`, end of the script, an error), an `atexit` handler
///   in the root unlinks every segment still listed and removes the file. Children never do
///   (they end with `_exit`, and the handler checks the pid).
/// - When the root is killed (`kill -9`), its children die with it (`PR_SET_PDEATHSIG`), so no
///   process of the tree is left to clean up: the **next `luamp` start** (any script or the REPL
///   on the same machine) scans `/dev/shm` for record files whose root is gone and unlinks what
///   they list.
enum ShmTracker {
    /// The tree's root and its record file; nil until `installRoot` (children inherit it).
    private static let root = ForkSafeLock<(pid: pid_t, path: String)?>(nil)
    private static var rootPid: pid_t { root.withLock { $0?.pid ?? 0 } }
    private static var recordPath: String { root.withLock { $0?.path ?? "" } }
    static let prefix = "luamp-tracker-"

    /// Called when `mp` is installed: the first call in a process tree makes this process the
    /// root (children inherit the values), arms the exit handler and cleans up after dead trees.
    static func installRoot() {
        guard rootPid == 0 else { return }
        let pid = getpid()
        let path = "/dev/shm/\(prefix)\(pid)-\(startTime(pid) ?? 0)"
        let first = root.withLock { r in
            if r != nil { return false }
            r = (pid, path)
            return true
        }
        guard first else { return }
        atexit { ShmTracker.exitHandler() }
        collectDeadTrees()
    }

    /// Records a created segment. Returns false when the record could not be written.
    @discardableResult
    static func track(_ name: String) -> Bool { append("+" + name) }

    /// Records an unlink (the segment is no longer this tree's to clean up).
    static func untrack(_ name: String) { _ = append("-" + name) }

    private static func append(_ line: String) -> Bool {
        guard !recordPath.isEmpty else { return false }
        let fd = open(recordPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array((line + "\n").utf8)
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    private static func exitHandler() {
        guard let r = root.withLock({ $0 }), getpid() == r.pid else { return }
        cleanup(r.path)
    }

    /// Unlinks every segment still listed in the record file at `path`, then the file.
    static func cleanup(_ path: String) {
        guard let text = readFile(path) else { return }
        var live: [String] = []
        for line in text.split(separator: "\n") {
            let name = String(line.dropFirst())
            if line.hasPrefix("+") { live.append(name) } else if line.hasPrefix("-") { live.removeAll { $0 == name } }
        }
        for name in live { ShmSegment.unlink(name) }
        Glibc.unlink(path)
    }

    /// Cleans up after every tree whose root is no longer running.
    private static func collectDeadTrees() {
        guard let dir = opendir("/dev/shm") else { return }
        var dead: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix(prefix) else { continue }
            let parts = name.dropFirst(prefix.count).split(separator: "-")
            guard parts.count == 2, let pid = pid_t(parts[0]), let start = UInt64(parts[1]) else { continue }
            if pid == rootPid { continue }
            if startTime(pid) != start { dead.append("/dev/shm/" + name) }
        }
        closedir(dir)
        for path in dead { cleanup(path) }
    }

    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks), nil if there is no such
    /// process or it has exited (a zombie not reaped yet counts as gone).
    static func startTime(_ pid: pid_t) -> UInt64? {
        guard let text = readFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so field 22 is fields[19].
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    private static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
