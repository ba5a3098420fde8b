// The Lua face of queues: mp.Queue, mp.SimpleQueue, mp.JoinableQueue and their methods.
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims
import Synchronization

extension MPModule {
    /// Installs `mp.Queue([maxsize])`, `mp.SimpleQueue()`, `mp.JoinableQueue([maxsize])` (each
    /// also taking `{maxsize = n}`) and registers the three kinds as sendable. Stack: [-0, +0].
    static func installQueues(_ s: LuaStack, _ t: Int32) {
        QueueFaults.configure()
        _ = queueKindsRegistered
        s.setFunction(t, "Queue") { s in try QueueKinds.construct(s, QueueKinds.queue, .queue) }
        s.setFunction(t, "JoinableQueue") { s in try QueueKinds.construct(s, QueueKinds.joinable, .joinable) }
        s.setFunction(t, "SimpleQueue") { s in try QueueKinds.construct(s, QueueKinds.simple, .simple) }
    }
}

/// Registers the queue kinds with `Handles` once per process (thread-safe, like the sync kinds).
private let queueKindsRegistered: Void = {
    for kind in [QueueKinds.queue, QueueKinds.simple, QueueKinds.joinable] { SharedKinds.register(kind) }
}()

/// The three queue kinds share one arena layout (`SharedQueue`) and differ in their methods.
enum QueueKinds {
    static let queue = SharedKind(name: "Queue", magic: UInt32(LUAMP_MAGIC_QUEUE), bytes: QueueLayout.size,
                                  hooks(queueMethods))
    static let joinable = SharedKind(name: "JoinableQueue", magic: UInt32(LUAMP_MAGIC_JOINABLE), bytes: QueueLayout.size,
                                     hooks(queueMethods + joinableMethods))
    static let simple = SharedKind(name: "SimpleQueue", magic: UInt32(LUAMP_MAGIC_SIMPLEQUEUE), bytes: QueueLayout.size,
                                   hooks(simpleMethods))

    /// The kinds differ in their methods. This process forgets it closed a queue once it no
    /// longer holds it (the offset may be reused).
    private static func hooks(_ methods: [(String, KindMethod)]) -> SharedKind.Hooks {
        SharedKind.Hooks(methods: methods, release: release, forget: { ClosedQueues.remove($0) }, describe: describe)
    }

    /// Frees an owned queue (this process made it and never shared it) and forgets that it was
    /// closed here: the offset may be reused by the next queue.
    private static func release(_ a: Arena, _ off: UInt64) {
        ClosedQueues.remove(off)
        SharedQueue(a, off).destroy()
    }

    /// `tostring(q)`: `<Queue size=3 maxsize=0>`, `<SimpleQueue size=3>`,
    /// `<JoinableQueue size=3 maxsize=0 unfinished=3>`, plus ` closed` after `q:close()` in this
    /// process. Counters are read without the queue's lock (approximate, like `qsize`).
    private static func describe(_ s: LuaStack, _ a: Arena, _ r: SharedRef) -> String {
        let q = SharedQueue(a, r.offset)
        var text = r.kindMagic == simple.magic ? "<SimpleQueue size=\(q.approximateCount)"
            : (r.kindMagic == joinable.magic ? "<JoinableQueue" : "<Queue") + " size=\(q.approximateCount) maxsize=\(q.maxsize)"
        if r.kindMagic == joinable.magic { text += " unfinished=\(q.approximateUnfinished)" }
        if ClosedQueues.contains(r.offset) { text += " closed" }
        return text + ">"
    }

    /// `mp.Queue(maxsize)` / `mp.Queue{maxsize = n}`: 0 or less is unbounded (as Python).
    static func construct(_ s: LuaStack, _ kind: SharedKind, _ flavor: SharedQueue.Flavor) throws -> Int32 {
        var maxsize: Int64 = 0
        if flavor != .simple {
            if s.type(at: 1) == .table {
                s.rawGet(1, field: "maxsize")
                if !s.isNoneOrNil(-1) {
                    guard let v = s.toInteger(-1) else { throw LuaRaise("'maxsize' must be an integer") }
                    maxsize = v
                }
                s.pop()
            } else {
                maxsize = try s.optInteger(1, 0)
            }
        }
        let a = try Arena.require()
        let q: SharedQueue
        do {
            q = try SharedQueue.create(a, magic: kind.magic, flavor: flavor, maxsize: UInt64(max(0, maxsize)))
        } catch let e as ArenaFull {
            throw LuaRaise("cannot create a queue: \(e)")
        }
        SharedKinds.push(s, kind, offset: q.offset, owned: true)
        StatusObjects.add(s, kind: flavor == .simple ? "SimpleQueue" : flavor == .joinable ? "JoinableQueue" : "Queue")
        return 1
    }

    // MARK: methods

    /// The queue at argument 1 of any queue kind. The hot path of every method: the one arena
    /// identity check (`SharedRef.at`, the kind magic in the userdata), nothing is allocated.
    private static func check(_ s: LuaStack) throws -> (SharedQueue, SharedQueue.Flavor) {
        let flavor: SharedQueue.Flavor
        let r = SharedRef.at(s, 1)
        switch r?.pointee.kindMagic {
        case UInt32(LUAMP_MAGIC_QUEUE): flavor = .queue
        case UInt32(LUAMP_MAGIC_JOINABLE): flavor = .joinable
        case UInt32(LUAMP_MAGIC_SIMPLEQUEUE): flavor = .simple
        default:
            throw LuaArgumentError(1, "mp.Queue expected, got \(Handles.kindName(s, at: 1).map { "mp." + $0 } ?? s.typeName(at: 1))")
        }
        guard let a = Arena.current else { _ = try Arena.require(); fatalError("unreachable") }
        return (SharedQueue(a, r!.pointee.offset), flavor)
    }

    private static func checkOpen(_ q: SharedQueue) throws {
        if ClosedQueues.contains(q.offset) { throw LuaRaise("the queue is closed (q:close() in this process)") }
    }

    /// `q:put(v [, block [, timeout]])`: encodes `v` (nil included) and appends it.
    static func put(_ s: LuaStack, _ deadline: Deadline) throws -> Int32 {
        let (q, f) = try check(s)
        try checkOpen(q)
        let joinable = f == .joinable
        let t0 = Trace.on ? Trace.now() : 0
        defer { if t0 > 0 { Trace.queueOp("put", q.offset, since: t0, size: Int(q.approximateCount)) } }
        if try EncodedString.withParts(s, at: 2, { try q.put($0, then: $1, deadline: deadline, countsTask: joinable) }) {
            return 0
        }
        try SendLog.undoingOnFailure {
            try Codec.withEncoded(s, at: 2, path: "value") { bytes in
                try q.put(bytes, deadline: deadline, countsTask: joinable)
            }
        }
        return 0
    }

    /// `q:get([block [, timeout]])`: takes and decodes the oldest message.
    static func get(_ s: LuaStack, _ deadline: Deadline) throws -> Int32 {
        let (q, _) = try check(s)
        try checkOpen(q)
        let t0 = Trace.on ? Trace.now() : 0
        defer { if t0 > 0 { Trace.queueOp("get", q.offset, since: t0, size: Int(q.approximateCount)) } }
        let taken: SharedQueue.Taken
        let scratch = Scratch.current
        if !scratch.busy {
            scratch.busy = true
            defer { scratch.busy = false }
            taken = try q.get(deadline: deadline, scratch: &scratch.buffer)
            try decode(s, q, taken, scratch.buffer.base)
        } else {
            var tmp = QueueScratch()   // a finalizer running inside a decode called get again
            defer { tmp.release() }
            taken = try q.get(deadline: deadline, scratch: &tmp)
            try decode(s, q, taken, tmp.base)
        }
        return 1
    }

    private static func decode(_ s: LuaStack, _ q: SharedQueue, _ taken: SharedQueue.Taken,
                               _ scratch: UnsafeMutableRawPointer) throws {
        // Each message is taken once: its handles' references become this process's holds.
        try SharedHolds.consuming {
            switch taken {
            case .inline(let n):
                try Codec.decode(s, UnsafeRawBufferPointer(start: scratch, count: n))
            case .big(let block, let n):
                defer { q.giveBack(block) }
                try Codec.decode(s, UnsafeRawBufferPointer(start: q.arena.pointer(block), count: n))
            }
        }
    }

    static let queueMethods: [(String, KindMethod)] = [
        ("put", { s in try put(s, s.blockAndTimeout(3)) }),
        ("get", { s in try get(s, s.blockAndTimeout(2)) }),
        ("put_nowait", { s in try put(s, .now) }),
        ("get_nowait", { s in try get(s, .now) }),
        ("qsize", { s in let (q, _) = try check(s); s.push(Int64(q.approximateCount)); return 1 }),
        ("empty", { s in let (q, _) = try check(s); try checkOpen(q); s.push(q.approximateCount == 0); return 1 }),
        ("full", { s in
            let (q, _) = try check(s)
            s.push(q.maxsize > 0 && q.approximateCount >= q.maxsize)
            return 1
        }),
        ("close", { s in let (q, _) = try check(s); ClosedQueues.insert(q.offset); return 0 }),
        // Python's feeder-thread controls: luamp has no feeder thread (puts are synchronous).
        ("join_thread", { s in _ = try check(s); return 0 }),
        ("cancel_join_thread", { s in _ = try check(s); return 0 }),
    ]

    static let joinableMethods: [(String, KindMethod)] = [
        ("task_done", { s in let (q, _) = try check(s); try q.taskDone(); return 0 }),
        ("join", { s in
            let (q, _) = try check(s)
            s.push(try q.join(deadline: s.deadlineArgument(2)))
            return 1
        }),
    ]

    static let simpleMethods: [(String, KindMethod)] = [
        ("put", { s in try put(s, .never) }),
        ("get", { s in try get(s, .never) }),
        ("empty", { s in let (q, _) = try check(s); try checkOpen(q); s.push(q.approximateCount == 0); return 1 }),
        ("close", { s in let (q, _) = try check(s); ClosedQueues.insert(q.offset); return 0 }),
    ]

    /// The consumer's copy-out buffer, one per thread; `busy` while a decode uses it.
    final class Scratch {
        var buffer = QueueScratch()
        var busy = false

        static var current: Scratch { threadObject(Int32(LUAMP_SLOT_QUEUE_SCRATCH), Scratch.init) }
    }
}

/// Queues this process closed (`q:close()`): per process, like Python's `_closed` flag, so a
/// child forked later starts with every queue open. Keyed by offset: the entry goes when this
/// process's hold on the queue ends (`SharedKind.forget`), before the offset can be reused.
enum ClosedQueues {
    private static let offsets = PerProcess<Set<UInt64>> { [] }
    /// 1 once this process (or its parent before the fork) closed a queue: while 0 (nearly
    /// always), `contains` answers without taking the lock (put and get ask it every time).
    private static let anyClosed = Atomic<Int>(0)

    static func insert(_ off: UInt64) {
        offsets.withLock { _ = $0.insert(off) }
        anyClosed.store(1, ordering: .relaxed)
    }

    static func remove(_ off: UInt64) {
        guard anyClosed.load(ordering: .relaxed) != 0 else { return }
        offsets.withLock { _ = $0.remove(off) }
    }

    static func contains(_ off: UInt64) -> Bool {
        anyClosed.load(ordering: .relaxed) != 0 && offsets.withLock { $0.contains(off) }
    }
}
