// ForkServerWire: the frames an app and a fork-server runtime exchange (requests, replies, LuaValues) and the socket I/O.
#if canImport(Glibc)
import Glibc
#endif

/// Builds one message. Integers are little-endian; strings and byte strings are a `UInt32`
/// length and the bytes.
struct WireWriter {
    private(set) var bytes: [UInt8] = [0, 0, 0, 0]      // room for the frame length

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: some Collection<UInt8>) { u32(UInt32(b.count)); bytes.append(contentsOf: b) }
    mutating func string(_ s: String) { raw(Array(s.utf8)) }
    mutating func strings(_ a: [String]) { u32(UInt32(a.count)); for s in a { string(s) } }

    /// Appends a value: 0 nil, 1 false, 2 true, 3 integer, 4 float, 5 string, 6 bytes, 7 table.
    /// - Throws: `LuaForkServerError` for functions, userdata and threads (they live in one state).
    mutating func value(_ v: LuaValue) throws {
        switch v {
        case .nil: u8(0)
        case .boolean(let b): u8(b ? 2 : 1)
        case .integer(let i): u8(3); i64(i)
        case .number(let d): u8(4); i64(Int64(bitPattern: d.bitPattern))
        case .string(let s): u8(5); string(s)
        case .bytes(let b): u8(6); raw(b)
        case .table(let t):
            u8(7); u32(UInt32(t.count))
            for (k, x) in t.entries { try value(k); try value(x) }
        case .function, .opaque:
            throw LuaForkServerError("a Lua \(v.typeName) cannot cross to or from a fork-server runtime (only nil, booleans, numbers, strings and tables of them)")
        }
    }
    mutating func values(_ a: [LuaValue]) throws { u32(UInt32(a.count)); for v in a { try value(v) } }

    /// The finished frame: its length patched into the first four bytes.
    var frame: [UInt8] {
        var b = bytes
        let n = UInt32(b.count - 4).littleEndian
        withUnsafeBytes(of: n) { for i in 0..<4 { b[i] = $0[i] } }
        return b
    }
}

/// Reads one message; every read is bounds-checked, so a malformed frame throws, never crashes.
struct WireReader {
    let bytes: [UInt8]
    private var at = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private static let malformed = LuaForkServerError("malformed fork-server message")

    mutating func u8() throws -> UInt8 {
        guard at < bytes.count else { throw Self.malformed }
        defer { at += 1 }
        return bytes[at]
    }
    mutating func u32() throws -> UInt32 {
        guard bytes.count - at >= 4 else { throw Self.malformed }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[at + i]) << (8 * i) }
        at += 4
        return v
    }
    mutating func i64() throws -> Int64 {
        guard bytes.count - at >= 8 else { throw Self.malformed }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[at + i]) << (8 * i) }
        at += 8
        return Int64(bitPattern: v)
    }
    mutating func raw() throws -> ArraySlice<UInt8> {
        let n = Int(try u32())
        guard bytes.count - at >= n else { throw Self.malformed }
        defer { at += n }
        return bytes[at..<(at + n)]
    }
    mutating func string() throws -> String { String(decoding: try raw(), as: UTF8.self) }
    mutating func strings() throws -> [String] {
        let n = Int(try u32())
        guard n <= bytes.count else { throw Self.malformed }
        return try (0..<n).map { _ in try string() }
    }

    mutating func value(depth: Int = 0) throws -> LuaValue {
        guard depth < 200 else { throw LuaForkServerError("fork-server message nests tables too deeply") }
        switch try u8() {
        case 0: return .nil
        case 1: return .boolean(false)
        case 2: return .boolean(true)
        case 3: return .integer(try i64())
        case 4: return .number(Double(bitPattern: UInt64(bitPattern: try i64())))
        case 5: return .string(try string())
        case 6: return .bytes(Array(try raw()))
        case 7:
            let n = Int(try u32())
            guard n <= bytes.count else { throw Self.malformed }
            var t = LuaTable()
            for _ in 0..<n {
                let k = try value(depth: depth + 1)
                let v = try value(depth: depth + 1)
                guard k != .nil else { throw Self.malformed }
                t[k] = v
            }
            return .table(t)
        default: throw Self.malformed
        }
    }
    mutating func values() throws -> [LuaValue] {
        let n = Int(try u32())
        guard n <= bytes.count else { throw Self.malformed }
        return try (0..<n).map { _ in try value() }
    }
}

/// What an app asks a fork-server runtime to do (the first byte of a request).
enum WireRequest: UInt8 {
    case open = 1, runString, runFile, evaluate, callGlobal, getGlobal, setGlobal, finish
}

/// A reply's first byte: results, or an error and its kind.
enum WireReply: UInt8 {
    case values = 0, syntaxError, runtimeError, memoryError, fileError, otherError
}

/// A connected stream socket carrying length-prefixed frames (at most 1 GiB each).
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

    /// Reads one frame; nil at a clean end of file (the peer closed between frames).
    /// - Throws: `LuaForkServerError` on an error, a frame cut short or an oversized length.
    func receive() throws -> WireReader? {
        var header = [UInt8](repeating: 0, count: 4)
        guard try readFully(&header, allowEOF: true) else { return nil }
        let n = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16 | Int(header[3]) << 24
        guard n <= 1 << 30 else { throw LuaForkServerError("fork-server frame too large (\(n) bytes)") }
        var body = [UInt8](repeating: 0, count: n)
        _ = try readFully(&body, allowEOF: false)
        return WireReader(body)
    }

    private func readFully(_ buf: inout [UInt8], allowEOF: Bool) throws -> Bool {
        var off = 0
        while off < buf.count {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LuaForkServerError("fork-server connection lost: \(String(cString: strerror(errno)))")
            }
            if n == 0 {
                if off == 0 && allowEOF { return false }
                throw LuaForkServerError("fork-server connection closed in the middle of a message")
            }
            off += n
        }
        return true
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

    init(reading r: inout WireReader) throws {
        let flags = try r.u8()
        self.init(ignoreEnvironment: flags & 1 != 0, openStandardLibraries: flags & 2 != 0,
                  libraries: LuaLibraries(rawValue: try r.u32()), installMP: flags & 4 != 0,
                  packagePath: try r.strings(), packageCPath: try r.strings())
    }
}
