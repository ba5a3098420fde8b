// ForkServerWire: the messages an app and a fork-server runtime exchange (requests, replies; LuaValues in the codec's format) in `Frame`s, and the socket I/O.
#if canImport(Glibc)
import Glibc
#endif

/// Builds one message: a `Frame` header (patched by `frame`) and the fields. Integers are
/// little-endian; strings and byte strings are a `UInt32` length and the bytes; Lua values are
/// codec messages (`CodecValues`: the codec's own format).
struct WireWriter {
    private(set) var bytes = [UInt8](repeating: 0, count: Frame.headerBytes)   // room for the header

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: some Collection<UInt8>) { u32(UInt32(b.count)); bytes.append(contentsOf: b) }
    mutating func string(_ s: String) { raw(Array(s.utf8)) }
    mutating func strings(_ a: [String]) { u32(UInt32(a.count)); for s in a { string(s) } }

    /// Appends a single-value codec message (`CodecValues`): nil, booleans, numbers, strings
    /// and tables of them.
    /// - Throws: `LuaForkServerError` for functions, userdata and threads (they live in one state).
    mutating func value(_ v: LuaValue) throws {
        do throws(CodecValues.Refusal) { try CodecValues.encode(v, into: &bytes) } catch { throw WireWriter.refused(error) }
    }
    /// Appends a codec tuple message of `a` (see `value`).
    mutating func values(_ a: [LuaValue]) throws {
        do throws(CodecValues.Refusal) { try CodecValues.encodeTuple(a, into: &bytes) } catch { throw WireWriter.refused(error) }
    }

    private static func refused(_ r: CodecValues.Refusal) -> LuaForkServerError {
        switch r {
        case .unsendable(let type):
            return LuaForkServerError("a Lua \(type) cannot cross to or from a fork-server runtime (only nil, booleans, numbers, strings and tables of them)")
        case .tooDeep:
            return LuaForkServerError("fork-server message nests tables too deeply")
        }
    }

    /// The finished frame: its header (magic, checksum, length) written over the first bytes.
    var frame: [UInt8] {
        var b = bytes
        b.withUnsafeMutableBytes { Frame.seal($0.baseAddress!, payloadLength: $0.count - Frame.headerBytes) }
        return b
    }
}

/// One received message (a verified frame's payload). Its fields are read with the one
/// bounds-checked reader, `ByteReader`, inside `read`; a malformed message throws, never crashes.
struct WireMessage {
    let bytes: [UInt8]

    static let malformed = LuaForkServerError("malformed fork-server message")

    /// Runs `body` with a reader over the message; the reader's `DecodeError` becomes
    /// `LuaForkServerError("malformed fork-server message")`.
    func read<R>(_ body: (inout ByteReader) throws -> R) throws -> R {
        try bytes.withUnsafeBytes { p in
            var r = ByteReader(p)
            do { return try body(&r) } catch let e as MPError where e.kind == "DecodeError" { throw WireMessage.malformed }
        }
    }
}

/// The fork server's fields, read from a message (see `WireWriter` for the encoding).
extension ByteReader {
    mutating func wireString() throws -> String {
        String(decoding: try bytes(try int(UInt32.self)), as: UTF8.self)
    }
    mutating func wireStrings() throws -> [String] {
        let n = Int(try int(UInt32.self))
        guard n <= remaining else { throw WireMessage.malformed }
        return try (0..<n).map { _ in try wireString() }
    }

    /// A single-value codec message (`CodecValues.decode`).
    mutating func wireValue() throws -> LuaValue { try CodecValues.decode(&self) }
    /// A codec tuple message (`CodecValues.decodeTuple`).
    mutating func wireValues() throws -> [LuaValue] { try CodecValues.decodeTuple(&self) }
}

/// What an app asks a fork-server runtime to do (the first byte of a request).
enum WireRequest: UInt8 {
    case open = 1, runString, runFile, evaluate, callGlobal, getGlobal, setGlobal, finish
}

/// A reply's first byte: results, or an error and its kind.
enum WireReply: UInt8 {
    case values = 0, syntaxError, runtimeError, memoryError, fileError, otherError
}

/// A connected stream socket carrying `Frame`s.
struct WireSocket {
    let fd: Int32

    /// Writes a whole frame (MSG_NOSIGNAL: a closed peer gives EPIPE, not SIGPIPE).
    /// - Throws: `LuaForkServerError` when the peer is gone.
    func send(_ w: WireWriter) throws {
        let frame = w.frame
        var off = 0
        while off < frame.count {
            let n = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LuaForkServerError("fork-server connection lost: \(String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Reads one frame (`Frame`: magic, length cap, checksum); nil at a clean end of file
    /// (the peer closed between frames).
    /// - Throws: `LuaForkServerError` on an error, a frame cut short, a bad header or checksum.
    func receive() throws -> WireMessage? {
        var header = [UInt8](repeating: 0, count: Frame.headerBytes)
        guard try readFully(&header, allowEOF: true) else { return nil }
        let (n, sum): (Int, UInt32)
        do {
            (n, sum) = try header.withUnsafeBytes { try Frame.parse($0.baseAddress!, stream: "on a fork-server connection") }
        } catch let e as MPError {
            throw LuaForkServerError(e.message)
        }
        guard let body = malloc(max(n, 1)) else { throw LuaForkServerError("fork-server frame too large (\(n) bytes)") }
        defer { free(body) }
        try readFully(body, n)
        let payload = UnsafeRawBufferPointer(start: body, count: n)
        guard Frame.checksum(payload) == sum else { throw LuaForkServerError("fork-server frame checksum mismatch") }
        return WireMessage(bytes: Array(payload))
    }

    private func readFully(_ buf: inout [UInt8], allowEOF: Bool) throws -> Bool {
        try buf.withUnsafeMutableBytes { b in
            let first = try readSome(b.baseAddress!, b.count, from: 0)
            if first == 0 && b.count > 0 {
                if allowEOF { return false }
                throw LuaForkServerError("fork-server connection closed in the middle of a message")
            }
            try readFully(b.baseAddress!, b.count, from: first)
            return true
        }
    }

    /// Reads exactly `count` bytes into `p` (from `start` on). - Throws: at end of file or an error.
    private func readFully(_ p: UnsafeMutableRawPointer, _ count: Int, from start: Int = 0) throws {
        var off = start
        while off < count {
            let n = try readSome(p, count, from: off)
            if n == 0 { throw LuaForkServerError("fork-server connection closed in the middle of a message") }
            off += n
        }
    }

    /// One `read` into `p + off` (retrying EINTR). - Returns: bytes read, 0 at end of file.
    private func readSome(_ p: UnsafeMutableRawPointer, _ count: Int, from off: Int) throws -> Int {
        guard off < count else { return 0 }
        while true {
            let n = read(fd, p + off, count - off)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw LuaForkServerError("fork-server connection lost: \(String(cString: strerror(errno)))")
        }
    }
}

extension LuaRuntime.Options {
    /// Options travel with the `open` request.
    func write(to w: inout WireWriter) {
        w.u8((ignoreEnvironment ? 1 : 0) | (openStandardLibraries ? 2 : 0) | (installMP ? 4 : 0))
        w.u32(libraries.rawValue)
        w.strings(packagePath)
        w.strings(packageCPath)
    }

    init(reading r: inout ByteReader) throws {
        let flags = try r.u8()
        self.init(ignoreEnvironment: flags & 1 != 0, openStandardLibraries: flags & 2 != 0,
                  libraries: LuaLibraries(rawValue: try r.int(UInt32.self)), installMP: flags & 4 != 0,
                  packagePath: try r.wireStrings(), packageCPath: try r.wireStrings())
    }
}
