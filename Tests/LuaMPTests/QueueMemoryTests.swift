// The queue's shared-memory protocol in-process: crash journal, publish-after-write, corruption checks.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LuaMP

@Suite(.serialized) struct QueueMemoryTests {
    let arena: Arena

    init() throws {
        guard let a = Arena.installIfNeeded() else { throw LuaRaise(Arena.mapError ?? "no arena") }
        arena = a
    }

    private func queue(maxsize: UInt64 = 0) throws -> SharedQueue {
        try SharedQueue.create(arena, magic: QueueKinds.queue.magic, flavor: .queue, maxsize: maxsize)
    }

    private func put(_ q: SharedQueue, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try q.put($0, deadline: .now, countsTask: false) }
    }

    /// Takes one message and returns its bytes.
    private func get(_ q: SharedQueue) throws -> [UInt8] {
        var scratch = QueueScratch()
        defer { scratch.release() }
        switch try q.get(deadline: .now, scratch: &scratch) {
        case .inline(let n):
            return Array(UnsafeRawBufferPointer(start: scratch.base, count: n))
        case .big(let block, let n):
            defer { q.giveBack(block) }
            return Array(UnsafeRawBufferPointer(start: arena.pointer(block), count: n))
        }
    }

    private func kind(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch let e as MPError { return e.kind } catch { return "\(error)" }
    }

    @Test func messagesOfEverySizeComeBackInOrderAcrossSegments() throws {
        let q = try queue()
        let sizes = [0, 1, 7, 8, 9, 100, 8192, 8193, 70_000, 3] + Array(repeating: 5000, count: 40)
        for (i, n) in sizes.enumerated() { try put(q, [UInt8](repeating: UInt8(i), count: n)) }
        #expect(q.approximateCount == UInt64(sizes.count))
        for (i, n) in sizes.enumerated() { #expect(try get(q) == [UInt8](repeating: UInt8(i), count: n)) }
        #expect(kind { _ = try get(q) } == "Empty")
        q.destroy()
    }

    @Test func aBoundedQueueRaisesFullAtItsLimit() throws {
        let q = try queue(maxsize: 2)
        try put(q, [1]); try put(q, [2])
        #expect(kind { try put(q, [3]) } == "Full")
        #expect(try get(q) == [1])
        try put(q, [3])
        q.destroy()
    }

    @Test func bytesWrittenBeyondTheTailAreInvisible() throws {
        // A producer killed mid-put wrote a record after the tail but never committed it.
        let q = try queue()
        try put(q, [42])
        let tail = q.state.tail
        let r = arena.pointer(QueueLayout.segment(tail)) + QueueLayout.position(tail)
        r.storeBytes(of: QueueLayout.recordInline, as: UInt32.self)
        r.storeBytes(of: UInt32(3), toByteOffset: 4, as: UInt32.self)
        #expect(try get(q) == [42])
        #expect(kind { _ = try get(q) } == "Empty")
        try put(q, [7, 7])            // the next producer simply overwrites the torn bytes
        #expect(try get(q) == [7, 7])
        q.destroy()
    }

    @Test func aValidJournalIsReappliedAndAHalfWrittenOneIgnored() throws {
        let q = try queue()
        try put(q, [1])
        let before = q.state
        // Killed after marking the journal valid, before updating the state words: redo.
        let j = arena.pointer(q.offset + UInt64(QueueLayout.journal)).assumingMemoryBound(to: UInt64.self)
        j[0] = before.head; j[1] = before.tail; j[2] = 0; j[3] = 9
        arena.pointer(q.offset + UInt64(QueueLayout.journalValid)).storeBytes(of: UInt64(1), as: UInt64.self)
        q.recover()
        #expect(q.state.count == 0 && q.state.unfinished == 9)
        // Killed while writing the journal (not yet valid): the committed state stands.
        j[2] = 77
        q.recover()
        #expect(q.state.count == 0)
        q.destroy()
    }

    @Test func corruptedRecordsRaiseDecodeErrorNeverCrash() throws {
        let q = try queue()
        try put(q, [1, 2, 3])
        let head = q.state.head
        let r = arena.pointer(QueueLayout.segment(head)) + QueueLayout.position(head)
        r.storeBytes(of: UInt32(60_000), toByteOffset: 4, as: UInt32.self)       // absurd length
        #expect(kind { _ = try get(q) } == "DecodeError")
        r.storeBytes(of: UInt32(0xdead), as: UInt32.self)                         // unknown tag
        #expect(kind { _ = try get(q) } == "DecodeError")
        r.storeBytes(of: QueueLayout.recordBig, as: UInt32.self)                  // block offset into nowhere
        r.storeBytes(of: UInt64(10), toByteOffset: 8, as: UInt64.self)
        r.storeBytes(of: UInt64(12345), toByteOffset: 16, as: UInt64.self)
        #expect(kind { _ = try get(q) } == "DecodeError")
        r.storeBytes(of: QueueLayout.recordNext, as: UInt32.self)                 // link to a non-segment
        #expect(kind { _ = try get(q) } == "DecodeError")
    }

    @Test func joinableCountsTasks() throws {
        let q = try SharedQueue.create(arena, magic: QueueKinds.joinable.magic, flavor: .joinable, maxsize: 0)
        try [UInt8(1)].withUnsafeBytes { try q.put($0, deadline: .now, countsTask: true) }
        #expect(q.unfinished == 1)
        #expect(try q.join(deadline: .now) == false)
        try q.taskDone()
        #expect(try q.join(deadline: .now) == true)
        #expect(throws: LuaRaise.self) { try q.taskDone() }
        q.destroy()
    }

    @Test func framesCatchCorruption() throws {
        let payload = [UInt8](repeating: 9, count: 1000)
        var header = [UInt8](repeating: 0, count: 16)
        payload.withUnsafeBytes { p in header.withUnsafeMutableBytes { Frame.header(for: p, into: $0.baseAddress!) } }
        let parsed = try header.withUnsafeBytes { try Frame.parse($0.baseAddress!, stream: "on this pipe") }
        #expect(parsed.length == 1000)
        var flipped = payload; flipped[500] ^= 1
        #expect(flipped.withUnsafeBytes { Frame.checksum($0) } != parsed.checksum)
        header[0] ^= 0xff
        #expect(kind { _ = try header.withUnsafeBytes { try Frame.parse($0.baseAddress!, stream: "on this pipe") } } == "DecodeError")
    }

    @Test func checksumsOfPartsEqualTheChecksumOfTheWhole() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        bytes.withUnsafeBytes { all in
            let whole = Frame.checksum(all)
            for cut in [0, 1, 7, 15, 16, 17, 500, 999, 1000] {
                var c = Checksum()
                c.update(UnsafeRawBufferPointer(rebasing: all[0..<cut]))
                c.update(UnsafeRawBufferPointer(rebasing: all[cut...]))
                #expect(c.finish(length: all.count) == whole, "cut at \(cut)")
            }
            #expect(Frame.checksum(UnsafeRawBufferPointer(rebasing: all[0..<999])) != whole)
        }
    }

    @Test func bigStringsTakeTheFastPathWithTheCodecsExactBytes() throws {
        let lua = try LuaRuntime()
        let s = lua.state.stack
        for n in [EncodedString.threshold - 1, EncodedString.threshold, 70_000] {
            s.push(String(repeating: "k", count: n))
            let codec = try Codec.encode(s, at: -1, path: "value")
            var fast: [UInt8] = []
            let taken = EncodedString.withParts(s, at: -1) { head, body in fast = Array(head) + Array(body) }
            #expect(taken == (n >= EncodedString.threshold))
            if taken { #expect(fast == codec) }
            s.pop()
        }
    }
}
