// The one `Frame` in-process: its checksum over any split of a payload, and pool channels, whose frames are `Frame`s read back by `FrameInbox` (damage is a protocol error, never a payload).
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LuaMP

@Suite struct FrameTests {
    /// Every split of every length up to 300 (so every block and tail size of the 4-lane
    /// checksum) gives the one-shot checksum; every single-bit flip of a 100-byte payload changes it.
    @Test func theChecksumStreamsOverAnySplitAndCatchesBitFlips() {
        var bytes = (0..<301).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        bytes.withUnsafeBytes { all in
            for n in 0...300 {
                let b = UnsafeRawBufferPointer(rebasing: all[1..<(1 + n)])
                let whole = Frame.checksum(b)
                for cut in 0...n {
                    var c = Checksum()
                    c.update(UnsafeRawBufferPointer(rebasing: b[0..<cut]))
                    c.update(UnsafeRawBufferPointer(rebasing: b[cut...]))
                    #expect(c.finish(length: n) == whole, "length \(n), cut at \(cut)")
                }
                for step in [1, 3, 13, 31, 33] {
                    var c = Checksum()
                    var i = 0
                    while i < n { c.update(UnsafeRawBufferPointer(rebasing: b[i..<min(n, i + step)])); i += step }
                    #expect(c.finish(length: n) == whole, "length \(n), parts of \(step)")
                }
            }
        }
        let sum = bytes.withUnsafeBytes { Frame.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<100])) }
        for i in 0..<100 {
            for bit in 0..<8 {
                bytes[i] ^= UInt8(1 << bit)
                #expect(bytes.withUnsafeBytes { Frame.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<100])) } != sum, "byte \(i) bit \(bit)")
                bytes[i] ^= UInt8(1 << bit)
            }
        }
    }

    /// A frame of `kind` with `payload` after the kind byte, as the host and workers build them.
    private func frame(_ kind: UInt8, _ payload: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        let start = PoolFrame.begin(&out, kind: kind)
        out.append(contentsOf: payload)
        try PoolFrame.finish(&out, from: start)
        return out
    }

    /// Writes `bytes` into a pipe, closes it, and returns every frame payload `FrameInbox`
    /// reads from it, or the protocol error it stopped at.
    private func read(_ bytes: [UInt8]) throws -> Result<[[UInt8]], PoolProtocolError> {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        #expect(bytes.withUnsafeBytes { PoolIO.writeAll(fds[1], $0) })
        close(fds[1])
        var inbox = FrameInbox(capacity: 64)
        defer { inbox.release() }
        var got: [[UInt8]] = []
        do {
            while true {
                while let f = try inbox.next() { got.append(Array(f)) }
                if try inbox.fill(fds[0]) == .eof { break }
            }
        } catch let e as PoolProtocolError {
            return .failure(e)
        }
        return .success(got)
    }

    @Test func poolFramesAreTheOneFrame() throws {
        let payload = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let f = try frame(PoolFrame.result, payload)
        let (n, sum) = try f.withUnsafeBytes { try Frame.parse($0.baseAddress!, stream: "on a pool channel") }
        #expect(n == 1 + payload.count && f.count == Frame.headerBytes + n)
        #expect(f.withUnsafeBytes { Frame.checksum(UnsafeRawBufferPointer(rebasing: $0[Frame.headerBytes...])) } == sum)
        let two = try frame(PoolFrame.clear, []) + f
        #expect(try read(two).get() == [[PoolFrame.clear], [PoolFrame.result] + payload])
    }

    @Test func aStampedTaskFrameVerifies() throws {
        var f: [UInt8] = []
        let start = PoolFrame.begin(&f, kind: PoolFrame.task)
        PoolFrame.appendTaskHeader(&f, function: 3, mode: 0, count: 5, timeoutMs: 0, flags: 0, position: 1)
        f.append(contentsOf: [1, 2, 3])
        try PoolFrame.finishTask(&f, from: start)
        PoolFrame.stampTask(&f, id: 42, start: 1, end: 4)
        let got = try read(f).get()
        #expect(got.count == 1 && got[0][0] == PoolFrame.task)
        // The chunk id stamped at send comes first (PoolWorkerLoop.TaskHeader reads the rest).
        #expect(got[0][1..<9].elementsEqual(withUnsafeBytes(of: UInt64(42).littleEndian) { Array($0) }))
    }

    @Test func damagedFramesAreProtocolErrors() throws {
        let good = try frame(PoolFrame.result, Array(repeating: 7, count: 100))
        var flipped = good; flipped[Frame.headerBytes + 50] ^= 1              // a payload bit
        var badMagic = good; badMagic[0] ^= 0xff                             // not a luamp frame
        var empty = good; empty.replaceSubrange(8..<16, with: [UInt8](repeating: 0, count: 8))  // no kind byte
        var huge = good; huge[15] = 0x7f                                      // over Frame.maxPayload
        for (name, bytes, says) in [("checksum", flipped, "checksum mismatch"), ("magic", badMagic, "not a luamp frame"),
                                    ("empty", empty, "bad frame length 0"), ("length", huge, "too large")] {
            switch try read(good + bytes) {
            case .success(let frames): Issue.record("\(name): read \(frames.count) frames, no protocol error")
            case .failure(let e): #expect(e.description.contains(says), "\(name): \(e.description)")
            }
        }
    }
}
