// Trace: each process's recorder of Chrome Trace Event Format events (spans, instants, counters), buffered into its own part file.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims
import Synchronization

/// The per-process trace recorder.
///
/// While a trace runs (`luamp --trace FILE.json`, `LUAMP_TRACE`, `mp.trace_start`), every
/// process of the tree appends events — one JSON object per line, in the Chrome Trace Event
/// Format — to its own *part file* `PID.jsonl` in a directory next to the trace file. Events
/// are buffered and written with one `write` per buffer (at most every 50 ms or 16 KiB, and
/// when the process ends), so a process killed with `kill -9` loses at most its last unwritten
/// events and never leaves half a line. The process that started the trace merges the part
/// files into `FILE.json` when it stops (`TraceFiles.merge`); lines that do not end a complete
/// event are dropped, so the result is always valid JSON.
///
/// Every event carries the OS pid as `pid` and `tid` (a track per process, so a track per pool
/// worker), wall time in microseconds (`ts`, CLOCK_REALTIME), and for spans a duration (`dur`).
/// Spans are complete (`"ph":"X"`) events written when they end: nothing is ever left open.
///
/// Cost when off: callers test `Trace.on` (one relaxed load of an atomic) before doing
/// anything else.
///
/// The recorder is per process (a forked child gets its own part file, `enterChild`) and
/// guarded: runtimes on several threads of an embedding app record into the same part file.
enum Trace {
    /// True while this process records.
    static var on: Bool { recording.load(ordering: .relaxed) }
    private static let recording = Atomic<Bool>(false)
    /// The directory of part files ("" when off).
    static var directory: String { recorder.withLock { $0.directory } }
    private static let recorder = ForkSafeLock(Recorder())
    /// Waits shorter than this (µs) are not recorded.
    static let minimumWait: Int64 = 1000
    static let flushInterval: Int64 = 50_000
    static let flushSize = 16 * 1024

    /// Wall time in microseconds.
    @inline(__always)
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1000
    }

    /// Starts recording into `dir` as the process `name` (the process that created `dir`).
    static func begin(directory dir: String, name: String) {
        recorder.withLock { r in
            r.directory = dir
            r.open(name: name)
        }
    }

    /// In a freshly forked child: drops what the parent had buffered and, if the parent was
    /// tracing, opens this process's own part file and names its track `name`.
    static func enterChild(name: String) {
        recorder.withLock { r in
            guard on || r.fd >= 0 else { return }
            // The parent's buffer and descriptor belong to the parent (the descriptor was not
            // marked close-on-fork; this process simply stops using it).
            withUnsafeMutablePointer(to: &r.buffer) { $0.initialize(to: []) }
            r.fd = -1
            recording.store(false, ordering: .relaxed)
            r.open(name: nil)      // the parent named this track when it forked it (`name(pid:)`)
        }
    }

    /// Writes the buffer and stops recording (a process's last call; merging is the caller's).
    static func close() { recorder.withLock { $0.close() } }

    /// Writes what is buffered (one `write`). Stops recording when the part file was removed
    /// (the trace was stopped and merged by the process that started it).
    static func flush() { recorder.withLock { $0.flush() } }

    /// About to wait: writes the buffer if `long`, or if the last write was 10 ms ago or more
    /// (a host polling many times a second writes at most 100 times a second).
    static func idle(long: Bool) {
        guard on else { return }
        recorder.withLock { r in
            guard !r.buffer.isEmpty else { return }
            if long || now() - r.lastWrite >= 10_000 { r.flush() }
        }
    }

    // MARK: events

    /// Metadata: names the track `pid`.
    static func name(pid: pid_t, _ name: String) {
        guard on else { return }
        recorder.withLock { $0.name(pid: pid, name) }
    }

    /// A span (`"ph":"X"`) from `start` to `end` on the track `pid` (this process by default).
    /// `args` is the body of a JSON object (`"k":1,"o":"ok"`), written as is.
    static func span(_ name: String, category: String, start: Int64, end: Int64, pid: pid_t = 0, args: String = "") {
        guard on else { return }
        recorder.withLock { $0.span(name, category: category, start: start, end: end, pid: pid, args: args) }
    }

    /// A wait on `what` (a lock, a queue, a join, a result) that began at `start`, recorded if it
    /// lasted at least `minimumWait`.
    @inline(__always)
    static func wait(_ what: @autoclosure () -> String, since start: Int64, args: @autoclosure () -> String = "") {
        guard on, start > 0 else { return }
        let t = now()
        if t - start >= minimumWait { span("wait " + what(), category: "wait", start: start, end: t, args: args()) }
    }

    /// A pool chunk's span on this process's track (the hot path: no string formatting):
    /// `map 5–8` (or `map 5`, `apply`) with `{pool, first, last, items, outcome}`.
    static func chunk(_ kind: StaticString, pool: Int, first: Int, count: Int, start: Int64, end: Int64, outcome: StaticString) {
        guard on else { return }
        recorder.withLock { $0.chunk(kind, pool: pool, first: first, count: count, start: start, end: end, outcome: outcome) }
    }

    /// An instant event (`"ph":"i"`, process scope) on the track `pid` (this process by default).
    static func instant(_ name: String, category: String, pid: pid_t = 0, args: String = "") {
        guard on else { return }
        recorder.withLock { $0.instant(name, category: category, pid: pid, args: args) }
    }

    /// A counter (`"ph":"C"`): `series` = `value` on this process's track.
    static func counter(_ name: String, _ series: String, _ value: Int) {
        guard on else { return }
        recorder.withLock { $0.counter(name, series, value) }
    }

    /// A queue `put`/`get` that began at `start` ended with `size` messages in the queue:
    /// the wait if it lasted over 1 ms, and the queue's size counter (at most one counter event
    /// per queue per 10 ms).
    static func queueOp(_ op: String, _ id: UInt64, since start: Int64, size: Int) {
        guard on else { return }
        let t = now()
        recorder.withLock { r in
            if t - start >= minimumWait { r.span("wait queue " + op, category: "wait", start: start, end: t, pid: 0, args: "\"queue\":\(id)") }
            if t - (r.queueCounterAt[id] ?? 0) >= 10_000 {
                r.queueCounterAt[id] = t
                r.counter("queue \(id) size", "size", size)
            }
        }
    }

    /// This process's part file and what is buffered for it.
    private struct Recorder {
        var directory = ""
        /// This process's part file, or -1.
        var fd: Int32 = -1
        var buffer: [UInt8] = []
        var lastWrite: Int64 = 0
        var ownerPID: pid_t = 0
        /// When each queue's size counter was last written (µs).
        var queueCounterAt: [UInt64: Int64] = [:]

        mutating func open(name: String?) {
            let pid = getpid()
            let path = directory + "/" + String(pid) + ".jsonl"
            let f = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard f >= 0 else { recording.store(false, ordering: .relaxed); return }
            fd = f
            ownerPID = pid
            buffer.reserveCapacity(flushSize + 1024)
            recording.store(true, ordering: .relaxed)
            if let n = name { self.name(pid: pid, n) }
            flush()
        }

        mutating func close() {
            guard fd >= 0, ownerPID == getpid() else { recording.store(false, ordering: .relaxed); fd = -1; return }
            flush()
            Glibc.close(fd)
            fd = -1
            recording.store(false, ordering: .relaxed)
        }

        mutating func flush() {
            guard fd >= 0, !buffer.isEmpty else { return }
            guard ownerPID == getpid() else { buffer.removeAll(keepingCapacity: true); return }
            var off = 0
            buffer.withUnsafeBytes { b in
                while off < b.count {
                    let n = write(fd, b.baseAddress! + off, b.count - off)
                    if n < 0 { if errno == EINTR { continue }; break }
                    off += n
                }
            }
            buffer.removeAll(keepingCapacity: true)
            let t = now()
            defer { lastWrite = t }
            guard t - lastWrite >= flushInterval else { return }
            var st = stat()
            if fstat(fd, &st) == 0 && st.st_nlink == 0 {
                Glibc.close(fd)
                fd = -1
                recording.store(false, ordering: .relaxed)
            }
        }

        @inline(__always)
        private mutating func written(at t: Int64) {
            buffer.append(contentsOf: ",\n".utf8)
            if buffer.count >= flushSize || t - lastWrite >= flushInterval { flush() }
        }

        mutating func name(pid: pid_t, _ name: String) {
            for kind in ["process_name", "thread_name"] {
                append("{\"ph\":\"M\",\"name\":\"\(kind)\",\"pid\":\(pid),\"tid\":\(pid),\"args\":{\"name\":")
                Trace.quote(name, into: &buffer)
                append("}}")
                buffer.append(contentsOf: ",\n".utf8)
            }
        }

        mutating func span(_ name: String, category: String, start: Int64, end: Int64, pid: pid_t, args: String) {
            event("{\"ph\":\"X\",\"cat\":\"\(category)\",\"name\":", name, pid: pid, ts: start, dur: max(0, end - start), args: args)
            written(at: end)
        }

        /// `head` (up to `"name":`), then the name, track, time, duration and args.
        private mutating func event(_ head: String, _ name: String, pid: pid_t, ts: Int64, dur: Int64?, args: String) {
            let p = pid == 0 ? ownerPID : pid
            append(head)
            Trace.quote(name, into: &buffer)
            append(",\"pid\":\(p),\"tid\":\(p),\"ts\":\(ts)")
            if let d = dur { append(",\"dur\":\(d)") }
            if !args.isEmpty { append(",\"args\":{\(args)}") }
            append("}")
        }

        mutating func chunk(_ kind: StaticString, pool: Int, first: Int, count: Int, start: Int64, end: Int64, outcome: StaticString) {
            let items = kind.utf8Start[0] == UInt8(ascii: "a") ? 1 : count
            let last = first + max(items, 1) - 1
            raw("{\"ph\":\"X\",\"cat\":\"task\",\"name\":\""); raw(kind)
            if items > 1 || kind.utf8Start[0] != UInt8(ascii: "a") {
                raw(" "); int(first)
                if last > first { buffer.append(contentsOf: [0xe2, 0x80, 0x93]); int(last) }     // en dash
            }
            raw("\",\"pid\":"); int(Int(ownerPID)); raw(",\"tid\":"); int(Int(ownerPID))
            raw(",\"ts\":"); int(Int(start)); raw(",\"dur\":"); int(Int(max(0, end - start)))
            raw(",\"args\":{\"pool\":"); int(pool); raw(",\"first\":"); int(first); raw(",\"last\":"); int(last)
            raw(",\"items\":"); int(items); raw(",\"outcome\":\""); raw(outcome); raw("\"}}")
            written(at: end)
        }

        mutating func instant(_ name: String, category: String, pid: pid_t, args: String) {
            let t = now()
            event("{\"ph\":\"i\",\"s\":\"p\",\"cat\":\"\(category)\",\"name\":", name, pid: pid, ts: t, dur: nil, args: args)
            written(at: t)
        }

        mutating func counter(_ name: String, _ series: String, _ value: Int) {
            let t = now()
            append("{\"ph\":\"C\",\"cat\":\"counter\",\"name\":")
            Trace.quote(name, into: &buffer)
            append(",\"pid\":\(ownerPID),\"tid\":\(ownerPID),\"ts\":\(t),\"args\":{")
            Trace.quote(series, into: &buffer)
            append(":\(value)}}")
            written(at: t)
        }

        @inline(__always)
        private mutating func append(_ s: String) { buffer.append(contentsOf: s.utf8) }

        @inline(__always)
        private mutating func raw(_ s: StaticString) {
            buffer.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }

        private mutating func int(_ v: Int) {
            var n = v
            if n < 0 { buffer.append(UInt8(ascii: "-")); n = -n }
            var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &tmp) { b in
                var i = 20
                repeat { i -= 1; b[i] = UInt8(48 + n % 10); n /= 10 } while n > 0
                buffer.append(contentsOf: b[i..<20])
            }
        }
    }

    // MARK: JSON text

    /// `s` as a JSON string literal, for `args` bodies.
    static func quoted(_ s: String) -> String {
        var b: [UInt8] = []
        quote(s, into: &b)
        return String(decoding: b, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal (control characters and non-UTF-8 escaped).
    fileprivate static func quote(_ s: String, into b: inout [UInt8]) {
        b.append(UInt8(ascii: "\""))
        for u in s.unicodeScalars {
            switch u {
            case "\"": b.append(contentsOf: "\\\"".utf8)
            case "\\": b.append(contentsOf: "\\\\".utf8)
            case "\n": b.append(contentsOf: "\\n".utf8)
            case "\t": b.append(contentsOf: "\\t".utf8)
            case "\r": b.append(contentsOf: "\\r".utf8)
            case "<": b.append(contentsOf: "\\u003c".utf8)      // safe inside an HTML <script>
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    let hex = Array("0123456789abcdef".utf8)
                    b.append(contentsOf: "\\u00".utf8)
                    b.append(hex[Int(u.value >> 4)]); b.append(hex[Int(u.value & 15)])
                } else {
                    b.append(contentsOf: String(u).utf8)
                }
            }
        }
        b.append(UInt8(ascii: "\""))
    }
}

extension Trace {
    /// The parent reaped child `pid`: its lifetime span (from the fork) on the child's track,
    /// and an instant when a signal ended it.
    static func processEnded(_ pid: pid_t, since start: Int64, code: Int32, stopped: Bool) {
        guard on else { return }
        let outcome = code < 0 ? (stopped ? "stopped (signal \(-code))" : "signal \(-code)") : "exit code \(code)"
        if code < 0 && !stopped { instant("killed (\(outcome))", category: "death", pid: pid, args: "\"signal\":\(-code)") }
        span("process", category: "process", start: start, end: now(), pid: pid,
             args: "\"exitcode\":\(code),\"outcome\":\(quoted(outcome))")
    }
}

/// A page shared by the whole tree (mapped by the main process before it forks anything) that
/// tells processes started *before* `mp.trace_start` that a trace began or ended: a generation
/// number and the part-file directory. Long-lived workers look at it before each task
/// (`Trace.follow`), so a pool made earlier is traced too.
///
/// Per process: the page's address is set once, by the main process's first install (under
/// `ObserveWaits.processSetup`), before any fork; `seen` is the generation this process last
/// followed. Both are atomics, so runtimes on other threads read them safely.
enum TraceControl {
    private static let address = Atomic<Int>(0)
    private static let seenGeneration = Atomic<UInt64>(0)
    static let size = 4096

    static var page: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: address.load(ordering: .acquiring)) }
    private static var seen: UInt64 {
        get { seenGeneration.load(ordering: .relaxed) }
        set { seenGeneration.store(newValue, ordering: .relaxed) }
    }

    /// In the main process (not in a child, `isChild`), once: maps the page (children inherit it).
    static func map(isChild: Bool) {
        guard page == nil, !isChild, let p = luamp_map_shared(size) else { return }
        address.store(Int(bitPattern: p), ordering: .releasing)
    }

    private static var generation: UnsafeMutablePointer<UInt64>? { page?.assumingMemoryBound(to: UInt64.self) }

    /// The trace starter: publishes `dir` ("" when the trace stopped).
    static func publish(_ dir: String) {
        guard let p = page, let g = generation else { return }
        let bytes = Array(dir.utf8.prefix(size - 16))
        p.storeBytes(of: UInt32(bytes.count), toByteOffset: 8, as: UInt32.self)
        bytes.withUnsafeBytes { (p + 12).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        seen = luamp_atomic_load64(g) + 1
        luamp_atomic_store64(g, seen)
    }

    /// Called by long-lived children between tasks: starts or stops recording as the page says.
    @inline(__always)
    static func follow(name: String) {
        guard let g = generation, luamp_atomic_load64(g) != seen else { return }
        changed(name: name)
    }

    private static func changed(name: String) {
        guard let p = page, let g = generation else { return }
        seen = luamp_atomic_load64(g)
        let n = Int(p.load(fromByteOffset: 8, as: UInt32.self))
        let dir = String(decoding: UnsafeRawBufferPointer(start: p + 12, count: min(n, size - 16)), as: UTF8.self)
        if dir.isEmpty {
            Trace.close()
        } else if dir != Trace.directory || !Trace.on {
            Trace.close()
            Trace.begin(directory: dir, name: name)
        }
    }
}
