// TraceSession: starting and stopping a trace (mp.trace_start/stop, LUAMP_TRACE, --trace), merging part files into one JSON file.
#if canImport(Glibc)
import Glibc
#endif

/// What the command line (or an embedding app) asks the runtime to observe, read when the
/// `mp` module is installed. The environment sets the same: `LUAMP_TRACE=FILE.json`,
/// `LUAMP_TRACE_HTML=FILE.html`, `LUAMP_PROGRESS=1`, `LUAMP_LABEL_OUTPUT=1`.
public enum Observability {
    /// Record a trace of the whole run into this JSON file (`luamp --trace FILE.json`).
    nonisolated(unsafe) public static var traceFile: String?
    /// Also (or only) write the trace as a self-contained HTML timeline (`--trace-html`).
    nonisolated(unsafe) public static var traceHTML: String?
    /// Progress bars for every pool call (`--progress`).
    nonisolated(unsafe) public static var progress = false
    /// Label every child's output lines with its name (`--label-output`).
    nonisolated(unsafe) public static var labelOutput = false

    /// Writes the HTML timeline of the trace file `json` to `html`.
    /// - Throws: `TraceFileError` when a file cannot be read or written.
    public static func writeHTML(trace json: String, to html: String) throws {
        try TraceHTML.write(trace: json, to: html)
    }

    /// Merges the part files a trace left behind (`FILE.json.parts.XXXXXX`, when the process that
    /// recorded it was killed before it could) into `json`, and removes them.
    public static func recoverTrace(parts dir: String, into json: String) throws {
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw TraceFileError("\(dir) is not a directory of trace parts")
        }
        try TraceFiles.merge(directory: dir, into: json)
    }
}

/// A trace file could not be read, written or understood.
public struct TraceFileError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// The trace this process started: where it goes and how it ends.
enum TraceSession {
    /// The JSON file being recorded (set only in the process that started the trace).
    nonisolated(unsafe) static var file: String?
    /// The HTML file to write when it stops.
    nonisolated(unsafe) static var html: String?
    /// A JSON file of our own (only `--trace-html` was asked): removed after the HTML is written.
    nonisolated(unsafe) static var temporaryJSON = false
    nonisolated(unsafe) static var startedBy: pid_t = 0
    nonisolated(unsafe) static var published = false
    /// Run by `stop` before it merges: ask long-lived children to write their events (pools).
    /// Each returns whether it asked anyone.
    nonisolated(unsafe) static var beforeStop: [() -> Bool] = []

    /// Starts a trace into `json` (and `html` at the end). No-op when one is running here.
    /// - Throws: `TraceFileError` when the directory for the part files cannot be made.
    /// `shared`: tell the processes started earlier (the main process's trace; a child's own
    /// trace covers only what it starts afterwards).
    static func start(json: String?, html: String?, name: String, shared: Bool = true) throws {
        guard file == nil else { throw TraceFileError("a trace is already being recorded (into \(file!))") }
        var target = json
        var temp = false
        if target == nil, let h = html { target = h + ".json"; temp = true }
        guard let t = target else { return }
        var template = Array((t + ".parts.XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else {
            throw TraceFileError("cannot record a trace into \(t): \(String(cString: strerror(errno)))")
        }
        let dir = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        file = t
        self.html = html
        temporaryJSON = temp
        startedBy = getpid()
        Trace.begin(directory: dir, name: name)
        Trace.instant("trace start", category: "trace")
        published = shared
        if shared { TraceControl.publish(dir) }
    }

    /// Stops the trace this process started: merges every part file into the JSON file (and
    /// writes the HTML when asked), then removes the part files. Children still running stop
    /// recording at their next write. In a child, only writes what it buffered.
    /// - Throws: `TraceFileError` when the trace cannot be written.
    static func stop() throws {
        guard let t = file, startedBy == getpid() else { Trace.close(); return }
        let dir = Trace.directory
        if published { TraceControl.publish("") }
        published = false
        // Long-lived children (pool workers) are asked to write what they hold; they do so as
        // soon as they read the request (a task running now is not in the trace).
        var asked = false
        for ask in beforeStop where ask() { asked = true }
        if asked {
            var ts = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            _ = nanosleep(&ts, nil)
        }
        Trace.close()
        file = nil
        defer { html = nil; temporaryJSON = false }
        try TraceFiles.merge(directory: dir, into: t)
        if let h = html {
            try TraceHTML.write(trace: t, to: h)
            if temporaryJSON { unlink(t) }
        }
    }

    /// Reads `LUAMP_TRACE`/`LUAMP_TRACE_HTML` and `Observability`, and starts the trace once per
    /// process (the variables are then removed, so a luamp started by the script does not write
    /// the same file).
    static func startFromSettings(name: String, isChild: Bool) throws {
        guard file == nil, !isChild else { return }
        var json = Observability.traceFile
        var html = Observability.traceHTML
        Observability.traceFile = nil
        Observability.traceHTML = nil
        if json == nil, let e = getenv("LUAMP_TRACE"), e.pointee != 0 { json = String(cString: e) }
        if html == nil, let e = getenv("LUAMP_TRACE_HTML"), e.pointee != 0 { html = String(cString: e) }
        unsetenv("LUAMP_TRACE")
        unsetenv("LUAMP_TRACE_HTML")
        if json != nil || html != nil { try start(json: json, html: html, name: name) }
    }
}

/// Reading part files and writing the merged trace.
enum TraceFiles {
    /// Merges the part files of `dir` into `path` as `{"traceEvents": [...], ...}` and removes
    /// them. A part file's last line is dropped unless it ends a complete event.
    static func merge(directory dir: String, into path: String) throws {
        var names: [String] = []
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let n = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
                if n.hasSuffix(".jsonl") { names.append(n) }
            }
            closedir(d)
        }
        names.sort()
        let tmp = path + ".tmp" + String(getpid())
        let out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw TraceFileError("cannot write the trace \(path): \(String(cString: strerror(errno)))") }
        var w = BufferedWriter(fd: out)
        w.write("{\"traceEvents\":[\n")
        var first = true
        for n in names {
            let file = dir + "/" + n
            guard let bytes = readFile(file) else { continue }
            // Complete events only: every one ends with "},\n".
            var end = bytes.count
            while end > 0 {
                if end >= 3 && bytes[end - 1] == 10 && bytes[end - 2] == UInt8(ascii: ",") && bytes[end - 3] == UInt8(ascii: "}") { break }
                end -= 1
            }
            if end >= 3 {
                if !first { w.write(",\n") }
                first = false
                w.write(bytes[0..<(end - 2)])
            }
            unlink(file)
        }
        w.write("\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"luamp \(MPModule.version)\"}}\n")
        let ok = w.finish()
        close(out)
        rmdir(dir)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw TraceFileError("cannot write the trace \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// The whole file, or nil.
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }
}

/// Buffered writes to a descriptor.
struct BufferedWriter {
    let fd: Int32
    var buffer: [UInt8] = []
    var failed = false

    init(fd: Int32) { self.fd = fd; buffer.reserveCapacity(1 << 16) }

    mutating func write(_ s: String) { write(Array(s.utf8)[...]) }

    mutating func write(_ b: ArraySlice<UInt8>) {
        buffer.append(contentsOf: b)
        if buffer.count >= 1 << 16 { drain() }
    }

    mutating func drain() {
        var off = 0
        buffer.withUnsafeBytes { p in
            while off < p.count {
                let n = Glibc.write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 { if errno == EINTR { continue }; failed = true; return }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func finish() -> Bool { drain(); return !failed }
}
