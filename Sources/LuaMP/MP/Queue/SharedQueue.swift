// SharedQueue: the cross-process message queue in the arena — put, get, task_done, join.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A view of one queue in the arena (layout and crash rules: `QueueLayout`).
///
/// Messages are the codec's bytes, kept in a linked list of 64 KiB segments as length-prefixed
/// records; a message bigger than `QueueLayout.inlineMax` lives in its own arena block that a
/// record points to. Producers append at the tail and consumers take from the head, each under
/// the queue's robust mutex; nothing blocks unless the queue is bounded and full (put) or empty
/// (get). Sleepers use event counts, and wake-ups cost a syscall only when someone sleeps.
struct SharedQueue {
    let arena: Arena
    let offset: UInt64
    let base: UnsafeMutableRawPointer

    enum Flavor: UInt32 { case queue = 0, simple = 1, joinable = 2 }

    init(_ arena: Arena, _ offset: UInt64) {
        self.arena = arena
        self.offset = offset
        self.base = arena.pointer(offset)
    }

    var mutex: RobustMutex { RobustMutex(at: base + QueueLayout.mutex) }
    var notEmpty: EventCount { EventCount(at: base + QueueLayout.notEmpty) }
    var notFull: EventCount { EventCount(at: base + QueueLayout.notFull) }
    var allDone: EventCount { EventCount(at: base + QueueLayout.allDone) }
    var maxsize: UInt64 { base.load(fromByteOffset: QueueLayout.maxsize, as: UInt64.self) }

    /// Creates a queue (header + first segment) in the arena.
    /// - Throws: `ArenaFull`, or `LuaRaise` if the mutex cannot be created.
    static func create(_ a: Arena, magic: UInt32, flavor: Flavor, maxsize: UInt64) throws -> SharedQueue {
        let off = try a.allocate(QueueLayout.size, zeroed: true)
        let seg: UInt64
        do { seg = try newSegment(a) } catch { a.free(off); throw error }
        let q = SharedQueue(a, off)
        _ = try RobustMutex.initialize(at: q.base + QueueLayout.mutex, kind: .normal)
        _ = EventCount.initialize(at: q.base + QueueLayout.notEmpty)
        _ = EventCount.initialize(at: q.base + QueueLayout.notFull)
        _ = EventCount.initialize(at: q.base + QueueLayout.allDone)
        q.base.storeBytes(of: flavor.rawValue, toByteOffset: QueueLayout.flavor, as: UInt32.self)
        q.base.storeBytes(of: maxsize, toByteOffset: QueueLayout.maxsize, as: UInt64.self)
        let start = QueueLayout.pack(seg, QueueLayout.segmentStart)
        q.commit(QueueState(head: start, tail: start, count: 0, unfinished: 0))
        luamp_atomic_store32(q.base.assumingMemoryBound(to: UInt32.self), magic)
        return q
    }

    private static func newSegment(_ a: Arena) throws -> UInt64 {
        let seg = try a.allocate(QueueLayout.segmentBytes)
        a.pointer(seg).storeBytes(of: QueueLayout.segmentMagic, as: UInt32.self)
        return seg
    }

    /// Locks the queue, repairing the state if the previous holder died mid-commit.
    @inline(__always)
    private func lock() {
        if mutex.lockShort() == .ownerDied { recover() }
    }

    // MARK: put

    /// Appends one encoded message, waiting for room until `deadline` if the queue is bounded.
    /// A big message is copied into its own block before the lock is taken.
    /// - Parameters:
    ///   - bytes: the codec's encoding of the message (or its first part).
    ///   - body: the rest of the encoding, for a message sent in two parts without joining them
    ///     first (`EncodedString`); its total must exceed `QueueLayout.inlineMax`.
    ///   - countsTask: JoinableQueue: the message adds one unfinished task.
    /// - Throws: `MPError("Full")` when no room came in time; `LuaRaise` when the arena is exhausted;
    ///   `interrupted!` on Ctrl-C.
    func put(_ bytes: UnsafeRawBufferPointer, then body: UnsafeRawBufferPointer? = nil,
             deadline: Deadline, countsTask: Bool) throws {
        var big: UInt64 = 0
        let total = bytes.count + (body?.count ?? 0)
        if total > QueueLayout.inlineMax {
            big = try takeBlock(total)
            let p = arena.pointer(big)
            if bytes.count > 0 { memcpy(p, bytes.baseAddress!, bytes.count) }
            if let body, body.count > 0 { memcpy(p + bytes.count, body.baseAddress!, body.count) }
        } else {
            precondition(body == nil, "a two-part message must be big")
        }
        let limit = maxsize
        while true {
            let seen = notFull.prepare()
            lock()
            var s = state
            if limit > 0 && s.count >= limit {
                mutex.unlock()
                if deadline.hasPassed {
                    if big != 0 { giveBack(big) }
                    throw MPError("Full", "the queue is full (maxsize \(limit))")
                }
                do {
                    _ = try notFull.wait(seen: seen, until: deadline) { self.approximateCount < limit }
                } catch {
                    if big != 0 { giveBack(big) }
                    throw error
                }
                continue
            }
            do {
                s.tail = try append(at: s.tail, bytes, big: big, total: total)
            } catch {
                mutex.unlock()
                if big != 0 { giveBack(big) }
                throw LuaRaise("cannot put on the queue: \(error)")
            }
            s.count += 1
            if countsTask { s.unfinished += 1 }
            QueueFaults.reach(.putBeforeCommit)
            commit(s, fault: .putInCommit)
            let wake = notEmpty.advance()
            mutex.unlock()
            if wake { notEmpty.wake(1) }
            return
        }
    }

    /// Writes a record beyond `tail` (invisible until committed) and returns the new tail.
    /// Starts a new segment when the record does not fit, linking it with a `QNXT` record.
    private func append(at tail: UInt64, _ bytes: UnsafeRawBufferPointer, big: UInt64, total: Int) throws -> UInt64 {
        let need = big != 0 ? QueueLayout.bigRecordBytes : QueueLayout.inlineRecordBytes(bytes.count)
        var seg = QueueLayout.segment(tail)
        var pos = QueueLayout.position(tail)
        var link: (UInt64, Int)? = nil
        if pos + need + QueueLayout.nextRecordBytes > QueueLayout.segmentBytes {
            let fresh = try SharedQueue.newSegment(arena)
            link = (seg, pos)
            seg = fresh
            pos = QueueLayout.segmentStart
        }
        let r = arena.pointer(seg) + pos
        if big != 0 {
            r.storeBytes(of: QueueLayout.recordBig, as: UInt32.self)
            r.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
            r.storeBytes(of: UInt64(total), toByteOffset: 8, as: UInt64.self)
            r.storeBytes(of: big, toByteOffset: 16, as: UInt64.self)
        } else {
            r.storeBytes(of: QueueLayout.recordInline, as: UInt32.self)
            r.storeBytes(of: UInt32(bytes.count), toByteOffset: 4, as: UInt32.self)
            if bytes.count > 0 { memcpy(r + 8, bytes.baseAddress!, bytes.count) }
        }
        if let (old, oldPos) = link {
            let n = arena.pointer(old) + oldPos
            n.storeBytes(of: QueueLayout.recordNext, as: UInt32.self)
            n.storeBytes(of: UInt32(0), toByteOffset: 4, as: UInt32.self)
            n.storeBytes(of: seg, toByteOffset: 8, as: UInt64.self)
        }
        return QueueLayout.pack(seg, pos + need)
    }

    // MARK: get

    /// A message taken from the queue: its bytes were copied into `scratch` (small) or the
    /// consumer now owns the block holding them (big: call `giveBack` after decoding).
    enum Taken {
        case inline(Int)
        case big(block: UInt64, length: Int)
    }

    /// Takes the oldest message, waiting until `deadline`. Polls briefly before sleeping so a
    /// steady stream of messages costs no syscalls.
    /// - Throws: `MPError("Empty")` when nothing came in time; `MPError("DecodeError")` when the
    ///   queue's memory is corrupted; `interrupted!` on Ctrl-C.
    func get(deadline: Deadline, scratch: inout QueueScratch) throws -> Taken {
        while true {
            if approximateCount == 0 && !deadline.hasPassed { spin() }
            let seen = notEmpty.prepare()
            lock()
            var s = state
            if s.count == 0 {
                mutex.unlock()
                if deadline.hasPassed { throw MPError("Empty", "the queue is empty") }
                _ = try notEmpty.wait(seen: seen, until: deadline) { self.approximateCount > 0 }
                continue
            }
            let taken: Taken
            var retired: [UInt64] = []
            do {
                (taken, s.head) = try take(at: s.head, scratch: &scratch, retired: &retired)
            } catch {
                mutex.unlock()
                throw error
            }
            s.count -= 1
            QueueFaults.reach(.getBeforeCommit)
            commit(s, fault: .getInCommit)
            let wake = maxsize > 0 ? notFull.advance() : false
            mutex.unlock()
            if wake { notFull.wake(1) }
            for seg in retired { arena.free(seg) }   // behind the committed head: nobody else sees them
            QueueFaults.reach(.getAfterCommit)
            return taken
        }
    }

    /// Reads the record at `head` (following `QNXT` links), validating every length and offset.
    /// - Returns: the message and the new head.
    private func take(at head: UInt64, scratch: inout QueueScratch, retired: inout [UInt64]) throws -> (Taken, UInt64) {
        var seg = QueueLayout.segment(head)
        var pos = QueueLayout.position(head)
        var hops = 0
        while true {
            guard validSegment(seg), pos >= QueueLayout.segmentStart, pos % 8 == 0,
                  pos + 8 <= QueueLayout.segmentBytes else { throw corrupted("bad head position") }
            let r = arena.pointer(seg) + pos
            let tag = r.load(as: UInt32.self)
            let room = QueueLayout.segmentBytes - pos
            switch tag {
            case QueueLayout.recordInline:
                let n = Int(r.load(fromByteOffset: 4, as: UInt32.self))
                guard n <= QueueLayout.inlineMax, QueueLayout.inlineRecordBytes(n) <= room else {
                    throw corrupted("bad message length \(n)")
                }
                scratch.reserve(n)
                if n > 0 { memcpy(scratch.base, r + 8, n) }
                return (.inline(n), QueueLayout.pack(seg, pos + QueueLayout.inlineRecordBytes(n)))
            case QueueLayout.recordBig:
                guard QueueLayout.bigRecordBytes <= room else { throw corrupted("truncated record") }
                let n = r.load(fromByteOffset: 8, as: UInt64.self)
                let block = r.load(fromByteOffset: 16, as: UInt64.self)
                guard arena.isLiveBlock(block, minBytes: Int(clamping: n)), n <= UInt64(Int.max) else {
                    throw corrupted("bad message block")
                }
                return (.big(block: block, length: Int(n)), QueueLayout.pack(seg, pos + QueueLayout.bigRecordBytes))
            case QueueLayout.recordNext:
                guard QueueLayout.nextRecordBytes <= room, hops == 0 else { throw corrupted("bad segment link") }
                let next = r.load(fromByteOffset: 8, as: UInt64.self)
                guard validSegment(next) else { throw corrupted("bad segment link") }
                retired.append(seg)
                seg = next
                pos = QueueLayout.segmentStart
                hops += 1
            default:
                throw corrupted("unknown record 0x\(String(tag, radix: 16))")
            }
        }
    }

    private func validSegment(_ seg: UInt64) -> Bool {
        seg < (1 << 48) && arena.isLiveBlock(seg, minBytes: QueueLayout.segmentBytes)
            && arena.pointer(seg).load(as: UInt32.self) == QueueLayout.segmentMagic
    }

    private func corrupted(_ what: String) -> MPError {
        MPError("DecodeError", "queue memory is corrupted (\(what))")
    }

    /// Polls the message count for up to 30 µs before a consumer sleeps, so a steady stream
    /// costs neither futex sleeps nor wakes: the word spin of the one spin policy
    /// (`luamp_spin_until_nonzero64`, luamp_spin.h; why, measured: docs/queues.md, "Performance").
    private func spin() {
        _ = luamp_spin_until_nonzero64(countWord)
    }

    // MARK: big-message blocks

    /// A block for a big message of `n` bytes: a cached one if big enough, else a new one.
    private func takeBlock(_ n: Int) throws -> UInt64 {
        if n <= QueueLayout.cachedBlockMax && luamp_load64_relaxed(cachedBytes) > 0 {
            for slot in QueueLayout.spareSlots {
                let p = spare(slot)
                let b = luamp_atomic_load64(p)
                if b != 0, arena.requestedSize(b) >= n, luamp_atomic_cas64(p, b, 0) != 0 {
                    _ = luamp_atomic_add64(cachedBytes, 0 &- UInt64(arena.requestedSize(b)))
                    return b
                }
            }
        }
        let b: UInt64
        do { b = try arena.allocate(max(n, QueueLayout.cachedBlockMin)) } catch {
            throw LuaRaise("cannot put on the queue: \(error)")
        }
        // Fresh (or given back) pages: fault them in with one call rather than one fault per
        // page during the copy (~25 % of a 1 MiB put went to page-fault entry and exit).
        if n >= 64 * 1024 {
            let page = Int(Arena.page)
            let from = Int(b) & ~(page - 1), to = (Int(b) + n + page - 1) & ~(page - 1)
            _ = luamp_populate_pages(arena.pointer(UInt64(from)), to - from)
        }
        return b
    }

    /// Returns a big message's block after decoding. Blocks up to `cachedBlockMax` are kept in the
    /// queue's spare slots (lock-free, at most `cachedBudget` bytes) so that big-message traffic
    /// reuses pages already mapped: a fresh shared page costs a fault and zeroing, and freeing
    /// gives pages back (`MADV_REMOVE`). (Measured under load, 1 MiB messages 1→1: with 5 slots a
    /// quarter of the puts missed the cache and paid ~1 ms each.) Bigger blocks, or when the
    /// budget is spent, are freed. A process killed in between leaks at most one block.
    func giveBack(_ block: UInt64) {
        let n = UInt64(arena.requestedSize(block))
        if n <= UInt64(QueueLayout.cachedBlockMax),
           luamp_atomic_add64(cachedBytes, n) <= QueueLayout.cachedBudget {
            for slot in QueueLayout.spareSlots where luamp_atomic_cas64(spare(slot), 0, block) != 0 { return }
            _ = luamp_atomic_add64(cachedBytes, 0 &- n)
        } else if n <= UInt64(QueueLayout.cachedBlockMax) {
            _ = luamp_atomic_add64(cachedBytes, 0 &- n)
        }
        arena.free(block)
    }

    private var cachedBytes: UnsafeMutablePointer<UInt64> {
        (base + QueueLayout.cachedBytes).assumingMemoryBound(to: UInt64.self)
    }

    private func spare(_ slot: Int) -> UnsafeMutablePointer<UInt64> {
        (base + slot).assumingMemoryBound(to: UInt64.self)
    }

    /// Frees the cached blocks (queue destruction).
    private func dropSpares() {
        for slot in QueueLayout.spareSlots {
            let b = luamp_atomic_load64(spare(slot))
            if b != 0, luamp_atomic_cas64(spare(slot), b, 0) != 0 { arena.free(b) }
        }
    }

    // MARK: JoinableQueue

    /// Marks one task done.
    /// - Throws: `LuaRaise` when called more times than items were put (Python's ValueError).
    func taskDone() throws {
        lock()
        var s = state
        guard s.unfinished > 0 else {
            mutex.unlock()
            throw LuaRaise("task_done() called too many times")
        }
        s.unfinished -= 1
        commit(s)
        let wake = s.unfinished == 0 ? allDone.advance() : false
        mutex.unlock()
        if wake { allDone.wake(Int32.max) }
    }

    /// Waits until every message put was marked done, or `deadline`.
    /// - Returns: true when all tasks are done.
    func join(deadline: Deadline) throws -> Bool {
        while true {
            let seen = allDone.prepare()
            lock()
            let left = state.unfinished
            mutex.unlock()
            if left == 0 { return true }
            if deadline.hasPassed { return false }
            _ = try allDone.wait(seen: seen, until: deadline)
        }
    }

    /// Unfinished tasks (JoinableQueue).
    var unfinished: UInt64 {
        lock()
        defer { mutex.unlock() }
        return state.unfinished
    }

    // MARK: freeing

    /// Frees the queue and everything it holds (only when no other process can reach it).
    func destroy() {
        var seg = QueueLayout.segment(state.head)
        var pos = QueueLayout.position(state.head)
        let tail = state.tail
        while validSegment(seg) {
            if QueueLayout.pack(seg, pos) == tail { arena.free(seg); break }
            let r = arena.pointer(seg) + pos
            switch r.load(as: UInt32.self) {
            case QueueLayout.recordInline:
                pos += QueueLayout.inlineRecordBytes(Int(r.load(fromByteOffset: 4, as: UInt32.self)))
            case QueueLayout.recordBig:
                let b = r.load(fromByteOffset: 16, as: UInt64.self)
                if arena.isLiveBlock(b) { arena.free(b) }
                pos += QueueLayout.bigRecordBytes
            case QueueLayout.recordNext:
                let next = r.load(fromByteOffset: 8, as: UInt64.self)
                arena.free(seg)
                seg = next
                pos = QueueLayout.segmentStart
            default:
                arena.free(seg)
                seg = 0
            }
            if pos >= QueueLayout.segmentBytes { break }
        }
        dropSpares()
        arena.free(offset)
    }
}

/// A per-process buffer a consumer copies small messages into (so it decodes outside the lock).
struct QueueScratch {
    private(set) var base: UnsafeMutableRawPointer
    private var capacity: Int

    init() {
        capacity = QueueLayout.inlineMax
        base = malloc(capacity)!
    }

    mutating func reserve(_ n: Int) {
        if n > capacity {
            capacity = n
            base = realloc(base, n)!
        }
    }

    func release() { free(base) }
}
