// TraceSession: starting and stopping a trace (mp.trace_start/stop, LUAMP_TRACE, --trace), merging part files into one JSON file.
#if canImport(Glibc)
import Glibc
#endif

/// What the command line (or an embedding app) asks the runtime to observe, read when the
/// `mp` module is installed. The environment sets the same: `LUAMP_TRACE=FILE.json`,
/// `LUAMP_TRACE_HTML=FILE.html`, `LUAMP_PROGRESS=1`, `LUAMP_LABEL_OUTPUT=1`.
/// Per process (one set of settings for every runtime), guarded: an app may set them from any
/// thread.
public enum Observability {
    /// Record a trace of the whole run into this JSON file (`luamp --trace FILE.json`).
    public static var traceFile: String? {
        get { settings.withLock { $0.traceFile } }
        set { settings.withLock { $0.traceFile = newValue } }
    }
    /// Also (or only) write the trace as a self-contained HTML timeline (`--trace-html`).
    public static var traceHTML: String? {
        get { settings.withLock { $0.traceHTML } }
        set { settings.withLock { $0.traceHTML = newValue } }
    }
    /// Progress bars for every pool call (`--progress`).
    public static var progress: Bool {
        get { settings.withLock { $0.progress } }
        set { settings.withLock { $0.progress = newValue } }
    }
    /// Label every child's output lines with its name (`--label-output`).
    public static var labelOutput: Bool {
        get { settings.withLock { $0.labelOutput } }
        set { settings.withLock { $0.labelOutput = newValue } }
    }

    /// The settings above, and what installs derived from them and the environment.
    struct Settings {
        var traceFile: String?
        var traceHTML: String?
        var progress = false
        var labelOutput = false
        /// Every pool call shows progress (`--progress`, `LUAMP_PROGRESS`).
        var progressAll = false
        /// `LUAMP_PROGRESS=1`: plain periodic lines when stderr is not a terminal.
        var progressForced = false
        /// Every child's output is labelled (`--label-output`, `LUAMP_LABEL_OUTPUT=1`).
        var labelAll = false
    }
    static let settings = ForkSafeLock(Settings())

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

/// The trace this process started: where it goes and how it ends. Per process, guarded (one
/// trace for every runtime of the process).
enum TraceSession {
    private struct State {
        /// The JSON file being recorded (set only in the process that started the trace).
        var file: String?
        /// The HTML file to write when it stops.
        var html: String?
        /// A JSON file of our own (only `--trace-html` was asked): removed after the HTML is written.
        var temporaryJSON = false
        var startedBy: pid_t = 0
        var published = false
        /// Run by `stop` before it merges: ask long-lived children to write their events (the
        /// pools of the stopping runtime). Each returns whether it asked anyone.
        var beforeStop: [(LuaStack) -> Bool] = []
    }
    private static let state = ForkSafeLock(State())

    /// The JSON file being recorded (set only in the process that started the trace).
    static var file: String? { state.withLock { $0.file } }
    /// The HTML file to write when it stops.
    static var html: String? { state.withLock { $0.html } }

    /// Adds a `beforeStop` request (once per process: `PoolTrace.registered`).
    static func addBeforeStop(_ ask: @escaping (LuaStack) -> Bool) { state.withLock { $0.beforeStop.append(ask) } }

    /// Starts a trace into `json` (and `html` at the end). No-op when one is running here.
    /// - Throws: `TraceFileError` when the directory for the part files cannot be made.
    /// `shared`: tell the processes started earlier (the main process's trace; a child's own
    /// trace covers only what it starts afterwards).
    static func start(json: String?, html: String?, name: String, shared: Bool = true) throws {
        try state.withLock { st in
            guard st.file == nil else { throw TraceFileError("a trace is already being recorded (into \(st.file!))") }
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
            st.file = t
            st.html = html
            st.temporaryJSON = temp
            st.startedBy = getpid()
            Trace.begin(directory: dir, name: name)
            Trace.instant("trace start", category: "trace")
            st.published = shared
            if shared { TraceControl.publish(dir) }
        }
    }

    /// Stops the trace this process started: merges every part file into the JSON file (and
    /// writes the HTML when asked), then removes the part files. Children still running stop
    /// recording at their next write. In a child, only writes what it buffered.
    /// - Throws: `TraceFileError` when the trace cannot be written.
    static func stop(_ s: LuaStack) throws {
        let ending: (file: String, html: String?, temporaryJSON: Bool, published: Bool, asks: [(LuaStack) -> Bool])? = state.withLock { st in
            guard let t = st.file, st.startedBy == getpid() else { return nil }
            defer { st.file = nil; st.html = nil; st.temporaryJSON = false; st.published = false }
            return (t, st.html, st.temporaryJSON, st.published, st.beforeStop)
        }
        guard let e = ending else { Trace.close(); return }
        let dir = Trace.directory
        if e.published { TraceControl.publish("") }
        // Long-lived children (pool workers) are asked to write what they hold; they do so as
        // soon as they read the request (a task running now is not in the trace).
        var asked = false
        for ask in e.asks where ask(s) { asked = true }
        if asked {
            var ts = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            _ = nanosleep(&ts, nil)
        }
        Trace.close()
        try TraceFiles.merge(directory: dir, into: e.file)
        if let h = e.html {
            try TraceHTML.write(trace: e.file, to: h)
            if e.temporaryJSON { unlink(e.file) }
        }
    }

    /// Reads `LUAMP_TRACE`/`LUAMP_TRACE_HTML` and `Observability`, and starts the trace once per
    /// process (the variables are then removed, so a luamp started by the script does not write
    /// the same file).
    static func startFromSettings(name: String, isChild: Bool) throws {
        guard file == nil, !isChild else { return }
        var (json, html) = Observability.settings.withLock { o in
            defer { o.traceFile = nil; o.traceHTML = nil }
            return (o.traceFile, o.traceHTML)
        }
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
