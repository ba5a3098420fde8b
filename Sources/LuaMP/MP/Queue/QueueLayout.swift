// QueueLayout: where a shared queue keeps its lock, wake-ups, state and crash journal in the arena.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// The arena layout of one queue (`mp.Queue`, `mp.SimpleQueue`, `mp.JoinableQueue`), 512 bytes.
///
/// ```
///   0  UInt32 magic (the kind's tag)        4  UInt32 flavor (0 Queue, 1 Simple, 2 Joinable)
///   8  UInt64 maxsize (0 = unbounded)
///  64  pthread_mutex_t (robust, shared, 40 bytes)
/// 104  EventCount notEmpty   112 EventCount notFull   120 EventCount allDone
/// 128  state: head, tail, count, unfinished  (UInt64 each)
/// 192  journal: the same four words        224 UInt64 journal valid flag
/// 256  UInt64 x 16: cached big-message blocks (reused to avoid page faults), 0 = empty slot
/// 384  UInt64 bytes held by cached blocks (their requested sizes)
/// ```
///
/// **Crash consistency.** Every change of the four state words goes through `commit`: the new
/// values are written to the journal, the journal is marked valid (one store: the commit point),
/// the state words are overwritten, and the journal is cleared. A process SIGKILLed anywhere in
/// between leaves the robust mutex owner-dead; the next locker calls `recover`, which re-applies
/// a valid journal (or ignores a half-written one). Message bytes are always written *beyond*
/// the tail before the commit, so a killed producer leaves nothing visible, and a consumer
/// advances the head only after it copied the message out.
enum QueueLayout {
    static let magic = 0
    static let flavor = 4
    static let maxsize = 8
    static let mutex = 64
    static let notEmpty = 104
    static let notFull = 112
    static let allDone = 120
    static let state = 128
    static let journal = 192
    static let journalValid = 224
    /// Slots caching big-message blocks for reuse (see `SharedQueue.giveBack`).
    static let spareSlots = (0..<16).map { 256 + 8 * $0 }
    static let cachedBytes = 384
    /// Blocks up to this size are cached; bigger messages give their memory back at once.
    static let cachedBlockMax = 4 << 20
    /// At most this many bytes of blocks are cached per queue.
    static let cachedBudget: UInt64 = 16 << 20
    /// Big-message blocks are at least this big, so a cached block fits most later messages.
    static let cachedBlockMin = 256 << 10
    static let size = 512

    /// Indices of the state words.
    static let head = 0, tail = 1, count = 2, unfinished = 3

    // MARK: segments

    /// A segment's usable bytes: its block is exactly 64 KiB with the allocator's header.
    static let segmentBytes = 65536 - Arena.blockHeader
    /// Records start here; the first word holds `segmentMagic`.
    static let segmentStart = 16
    static let segmentMagic: UInt32 = 0x4745_5351   // "QSEG"
    /// Messages up to this size are copied into the segment; bigger ones get their own block.
    static let inlineMax = 8192

    /// Record tags (first UInt32 of a record; the second is the inline length or 0).
    static let recordInline: UInt32 = 0x4c4e_4951   // "QINL": UInt32 len, then len bytes (padded to 8)
    static let recordBig: UInt32 = 0x4749_4251      // "QBIG": UInt32 0, UInt64 length, UInt64 block
    static let recordNext: UInt32 = 0x5458_4e51     // "QNXT": UInt32 0, UInt64 next segment
    static let nextRecordBytes = 16
    static let bigRecordBytes = 24

    /// Bytes an inline record of `n` payload bytes takes.
    @inline(__always)
    static func inlineRecordBytes(_ n: Int) -> Int { 8 + ((n + 7) & ~7) }

    /// A position packed in one word (so it is published with one store): the segment's offset
    /// in the low 48 bits, the byte position inside it in the high 16.
    @inline(__always)
    static func pack(_ segment: UInt64, _ pos: Int) -> UInt64 { segment | (UInt64(pos) << 48) }
    @inline(__always)
    static func segment(_ p: UInt64) -> UInt64 { p & 0xFFFF_FFFF_FFFF }
    @inline(__always)
    static func position(_ p: UInt64) -> Int { Int(p >> 48) }
}

/// The four state words of a queue, as one value.
struct QueueState {
    var head: UInt64
    var tail: UInt64
    var count: UInt64
    var unfinished: UInt64
}

extension SharedQueue {
    private func word(_ byteOffset: Int) -> UnsafeMutablePointer<UInt64> {
        (base + byteOffset).assumingMemoryBound(to: UInt64.self)
    }

    /// The committed state (read with the mutex held).
    var state: QueueState {
        let p = word(QueueLayout.state)
        return QueueState(head: p[0], tail: p[1], count: p[2], unfinished: p[3])
    }

    /// Publishes `s` through the journal (mutex held). See `QueueLayout`. The release fences keep
    /// the three steps in order as other processes (and a process killed midway) see them.
    func commit(_ s: QueueState, fault: QueueFaults.Point? = nil) {
        let j = word(QueueLayout.journal)
        j[0] = s.head; j[1] = s.tail; j[2] = s.count; j[3] = s.unfinished
        luamp_fence_release()
        luamp_store64_relaxed(word(QueueLayout.journalValid), 1)       // the commit point
        luamp_fence_release()
        if let fault { QueueFaults.reach(fault) }
        apply(s)
        luamp_fence_release()
        luamp_store64_relaxed(word(QueueLayout.journalValid), 0)
    }

    private func apply(_ s: QueueState) {
        let p = word(QueueLayout.state)
        p[0] = s.head; p[1] = s.tail
        luamp_store64_relaxed(p + 2, s.count)   // read without the lock by qsize/empty and spinners
        p[3] = s.unfinished
    }

    /// After `ownerDied`: finishes the commit a killed process was in the middle of (a valid
    /// journal is re-applied; a journal not yet marked valid is ignored, so the state is the old one).
    func recover() {
        if luamp_atomic_load64(word(QueueLayout.journalValid)) == 1 {
            let j = word(QueueLayout.journal)
            apply(QueueState(head: j[0], tail: j[1], count: j[2], unfinished: j[3]))
            luamp_fence_release()
            luamp_store64_relaxed(word(QueueLayout.journalValid), 0)
        }
    }

    /// Messages in the queue, read without the lock (approximate, as in Python).
    var approximateCount: UInt64 { luamp_load64_relaxed(countWord) }

    /// The committed message count's word (what consumers spin on before they sleep).
    var countWord: UnsafeMutablePointer<UInt64> { word(QueueLayout.state) + 2 }

    /// Unfinished tasks (JoinableQueue), read without the lock (approximate: for `tostring`).
    var approximateUnfinished: UInt64 { luamp_load64_relaxed(word(QueueLayout.state) + 3) }

}
