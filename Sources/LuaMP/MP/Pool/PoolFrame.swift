// PoolFrame: the payloads of pool channels — their kind byte table and the builders of each kind, in the one `Frame`.

/// The frames a pool host and its workers exchange over their pipes (one writer, one reader
/// per pipe, so frames never interleave). Each is a `Frame` (16-byte header: magic, checksum,
/// length); the payload's first byte is its kind; numbers are little-endian. A frame with a
/// bad magic, a length over `Frame.maxPayload` or a checksum that does not match is a protocol
/// error (`FrameInbox`): the host then stops that worker.
///
/// | kind | direction | payload after the kind byte |
/// |---|---|---|
/// | `F` define | host → worker | `u32` function id, codec value (the function) |
/// | `C` clear | host → worker | — (forget every function id) |
/// | `L` trace flush | host → worker | — (write buffered trace events; `mp.trace_stop`) |
/// | `T` task | host → worker | `u64` chunk id, `u32` function id, `u8` mode, `u32` count, `u32` start, `u32` end, `u32` per-item timeout (ms), `u8` flags, `u64` first position, codec tuple (items) |
/// | `R` result | worker → host | `u64` chunk id, codec tuple (results) |
/// | `E` error | worker → host | `u64` chunk id, `u32`+bytes message, `u32`+bytes traceback, `u32`+bytes codec value (the error value, may be empty) |
/// | `I` item | worker → host | `u64` chunk id, `u32` index, `u8` ok, then a one-value codec tuple (ok) or the `E` fields after the id |
enum PoolFrame {
    /// Bytes before the kind byte: the `Frame` header.
    static let headerSize = Frame.headerBytes

    static let define: UInt8 = 0x46    // "F"
    static let clear: UInt8 = 0x43     // "C"
    static let traceFlush: UInt8 = 0x4C  // "L": write buffered trace events now (mp.trace_stop)
    static let task: UInt8 = 0x54      // "T"
    static let result: UInt8 = 0x52    // "R"
    static let failure: UInt8 = 0x45   // "E"
    /// One item's outcome in a chunk run item by item (timeout, retries, errors = "return"):
    /// id u64, index u32, ok u8, then a one-value tuple (ok) or message, traceback, value.
    static let item: UInt8 = 0x49      // "I"
    /// `flags` of a T frame: run item by item, one `I` frame each, then an empty `R`.
    static let perItem: UInt8 = 1

    /// Starts a frame at the end of `out` (a zeroed header, patched by `finish`); returns its offset.
    @inline(__always)
    static func begin(_ out: inout [UInt8], kind: UInt8) -> Int {
        let start = out.count
        withUnsafeBytes(of: (UInt64(0), UInt64(0))) { out.append(contentsOf: $0) }   // headerSize bytes
        out.append(kind)
        return start
    }

    /// Writes the header (magic, checksum, length) of the frame that starts at `start` and runs
    /// to the end of `out`.
    /// - Throws: `MPError("SendError", …)` when the payload is larger than `Frame.maxPayload`.
    static func finish(_ out: inout [UInt8], from start: Int) throws {
        let len = try payloadLength(out, from: start)
        out.withUnsafeMutableBytes { Frame.seal($0.baseAddress! + start, payloadLength: len) }
    }

    /// `finish` for a `T` frame (which starts at offset 0 of `out`): checks the size and writes
    /// magic and length; the chunk id and the checksum are written by `stampTask` at each send.
    static func finishTask(_ out: inout [UInt8], from start: Int) throws {
        precondition(start == 0, "a task frame starts its buffer")
        let len = try payloadLength(out, from: start)
        out.withUnsafeMutableBytes { Frame.write(into: $0.baseAddress!, length: len, checksum: 0) }
    }

    /// The payload length of the frame at `start` of `out`.
    /// - Throws: `MPError("SendError", …)` when it is larger than `Frame.maxPayload`.
    @inline(__always)
    private static func payloadLength(_ out: [UInt8], from start: Int) throws -> Int {
        let len = out.count - start - headerSize
        guard UInt64(len) <= Frame.maxPayload else {
            throw MPError("SendError", "message of \(len) bytes is larger than the 1 TiB frame limit")
        }
        return len
    }

    /// Appends a `T` frame's fields after `begin`: the chunk id and item range (stamped at
    /// each send), function id, mode, item count, per-item timeout (ms, 0: none) and flags.
    /// The codec tuple of the items follows.
    static func appendTaskHeader(_ out: inout [UInt8], function: UInt32, mode: UInt8, count: UInt32,
                                 timeoutMs: UInt32, flags: UInt8, position: Int) {
        out.appendLE(UInt64(0))                   // the chunk id, stamped at send
        out.appendLE(function)
        out.append(mode)
        out.appendLE(count)
        out.appendLE(UInt32(0))                   // first item to run, stamped at send
        out.appendLE(count)                       // end of the items to run, stamped at send
        out.appendLE(timeoutMs)
        out.append(flags)
        out.appendLE(UInt64(position))            // the chunk's first input position (traces)
    }

    /// Writes chunk id `id` and the item range `start..<end` into a `T` frame built by
    /// `finishTask`, and its checksum.
    static func stampTask(_ frame: inout [UInt8], id: UInt64, start: UInt32, end: UInt32) {
        frame.withUnsafeMutableBytes { b in
            let base = b.baseAddress!
            (base + headerSize + 1).storeBytes(of: id.littleEndian, toByteOffset: 0, as: UInt64.self)
            (base + headerSize + 18).storeBytes(of: start.littleEndian, toByteOffset: 0, as: UInt32.self)
            (base + headerSize + 22).storeBytes(of: end.littleEndian, toByteOffset: 0, as: UInt32.self)
            let sum = Frame.checksum(UnsafeRawBufferPointer(start: base + headerSize, count: b.count - headerSize))
            (base + 4).storeBytes(of: sum.littleEndian, as: UInt32.self)
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends a little-endian integer.
    @inline(__always)
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}

