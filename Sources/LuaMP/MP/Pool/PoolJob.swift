// Pool jobs and chunks: what was submitted (map/apply/imap), where its input comes from, what came back.
internal import CLua
internal import LuaMPShims

/// Why a chunk (or a job) failed.
enum JobError {
    /// RemoteError, WorkerLost, SendError, DecodeError …
    case mp(MPError)
    /// A host-side Lua error value (an imap input iterator raised), kept in the registry.
    case value(Int32)
}

/// An error raised with the Lua value a registry slot holds (the value stays referenced).
struct RegistryValueError: LuaValueError {
    let ref: Int32
    func pushError(onto s: LuaStack) { _ = lua_rawgeti(s.L, s.registryIndex(), lua_Integer(ref)) }
}

/// What a chunk is, the same for all its resends: `count` consecutive items of a job starting
/// at `position`.
struct ChunkSpan {
    let job: PoolJob
    /// Sequence number within the job (0, 1, 2 … in input order).
    let seq: Int
    /// 1-based input position of the first item.
    let position: Int
    let count: Int
    let function: FunctionEntry
}

/// One unit sent to a worker: a span of a job's items (or, after a death in a chunk run item by
/// item, part of one).
final class PoolChunk {
    /// The id it was last sent with (0 before it was sent); the worker echoes it in its answer.
    var id: UInt64 = 0
    /// What it is and what it still owes, shared by its resends.
    let group: ChunkGroup
    var job: PoolJob { group.span.job }
    var seq: Int { group.span.seq }
    var position: Int { group.span.position }
    var count: Int { group.span.count }
    var function: FunctionEntry { group.span.function }
    /// The items to run, 0-based within the chunk (`start..<end`): after a death in a chunk run
    /// item by item, the rest of it is sent again from the next item, the lost item alone.
    var start = 0
    var end: Int
    /// Items of it answered so far (per-item chunks: `I` frames), from `start`.
    var answered = 0
    /// Runs so far of an item lost with its worker (retries), for a single-item resend.
    var attempts = 0
    /// The complete `T` frame, kept until a result arrives (so it can be re-sent elsewhere);
    /// its chunk id and checksum are stamped at each send.
    var frame: [UInt8]

    convenience init(job: PoolJob, seq: Int, position: Int, count: Int, function: FunctionEntry, frame: [UInt8]) {
        self.init(ChunkGroup(ChunkSpan(job: job, seq: seq, position: position, count: count, function: function)),
                  frame: frame, items: 0..<count)
    }

    private init(_ group: ChunkGroup, frame: [UInt8], items: Range<Int>) {
        self.group = group
        self.frame = frame
        start = items.lowerBound
        end = items.upperBound
    }

    /// A copy running items `start..<end` of the same frame (a new id at its send).
    func resend(start: Int, end: Int, attempts: Int) -> PoolChunk {
        let c = PoolChunk(group, frame: frame, items: start..<end)
        c.attempts = attempts
        return c
    }
}

/// A chunk and its resends: what they are and what they still owe (per-item chunks).
final class ChunkGroup {
    let span: ChunkSpan
    /// Items of the original chunk without an outcome yet.
    var remaining: Int
    /// The arena objects' message references its frame holds (objects sent as arguments):
    /// given back once the chunk has its outcome (`PoolState.releaseReferences(of:)`).
    var references: [(UInt64, SharedKind)] = []
    init(_ span: ChunkSpan) {
        self.span = span
        remaining = span.count
    }
}

/// Where a job's items come from, read chunk by chunk.
final class ChunkSource {
    enum Kind { case list, iterator }
    let kind: Kind
    /// The list table or the iterator function, released once the input ended (or its job
    /// went away).
    let slot: RegistrySlot
    var ref: Int32 { slot.ref }
    /// Items per chunk.
    let size: Int
    /// Next 1-based position to read.
    var next = 1
    /// Length of a list (its `n` or border); unknown for iterators.
    let count: Int

    init(kind: Kind, ref: Int32, size: Int, count: Int, garbage: RegistryGarbage) {
        self.kind = kind
        // The list or iterator is released once the input ended (or its job went away), in the
        // pool's runtime.
        slot = RegistrySlot(ref) { garbage.append($0) }
        self.size = size
        self.count = count
    }
}

/// A completed chunk as an imap iterator consumes it.
struct ChunkOutcome {
    let seq: Int
    let position: Int
    let count: Int
    let error: JobError?
}

/// A submitted piece of work: `map`/`starmap` (results by position), `apply` (all return
/// values), or `imap`/`imap_unordered` (results buffered for an iterator).
final class PoolJob {
    enum Kind { case map, apply, imap, imapUnordered }
    let kind: Kind
    let pool: PoolState
    let function: FunctionEntry
    /// LUAMP_POOL_MAP / STAR / APPLY.
    let mode: UInt8
    /// Registry reference to the results table (map/apply) or the imap buffer; held until the job
    /// is released, so callbacks and late results can reach it.
    var resultsRef: Int32 = LUA_NOREF
    var callbackRef: Int32 = LUA_NOREF
    var errorCallbackRef: Int32 = LUA_NOREF
    /// Input not read yet; nil once exhausted (or cancelled).
    @exclusivity(unchecked) var source: ChunkSource?
    @exclusivity(unchecked) var chunksMade = 0
    @exclusivity(unchecked) var chunksDone = 0
    /// The failure at the lowest input position (what `map`/`get` raise).
    var firstError: (position: Int, error: JobError)?
    /// True once every chunk has an outcome (or the pool was terminated).
    @exclusivity(unchecked) var done = false
    /// The pool was terminated before the job finished.
    @exclusivity(unchecked) var terminated = false
    /// An imap iterator closed early, or `cancel()`: late results are dropped.
    @exclusivity(unchecked) var cancelled = false
    /// Its place in the pool's `jobs` (`JobList`); -1 when not in it.
    @exclusivity(unchecked) var listSlot = -1
    /// Done-callbacks and the future's cancelled flag (`AsyncResult`).
    let hooks = FutureHooks()
    /// Options: per-item timeout (ms, 0: none), retries after WorkerLost/TimeoutError, and
    /// errors = "return" (error objects in the results instead of raising).
    var timeoutMs: UInt32 = 0
    var retries = 0
    var returnErrors = false
    /// map/starmap/imap chunks run item by item (each item's outcome is its own frame).
    var perItem: Bool { mode != UInt8(LUAMP_POOL_APPLY) && (timeoutMs > 0 || retries > 0 || returnErrors) }
    /// imap: item failures by input position (raised when that position is reached).
    var itemErrors: [Int: JobError] = [:]

    // imap bookkeeping
    /// Completed chunks by sequence number (ordered imap) …
    var outcomes: [Int: ChunkOutcome] = [:]
    /// … or in completion order (imap_unordered).
    var arrivals = Ring<ChunkOutcome>()
    var chunksConsumed = 0
    /// The chunk being handed out and the next position in it.
    var current: ChunkOutcome?
    var currentNext = 0
    /// Items finished (results or failures) and failed so far; the progress bar, if any.
    var itemsDone = 0
    /// Items in the job (-1: unknown, an iterator).
    var itemsTotal = -1
    var itemsFailed = 0
    var progress: ProgressBar?

    init(kind: Kind, pool: PoolState, function: FunctionEntry, mode: UInt8) {
        self.kind = kind
        self.pool = pool
        self.function = function
        self.mode = mode
    }

    deinit {
        let garbage = pool.garbage
        func free(_ r: Int32) { if r != LUA_NOREF && r != LUA_REFNIL { garbage.append(r) } }
        free(resultsRef)
        free(callbackRef)
        free(errorCallbackRef)
        if let (_, e) = firstError, case .value(let r) = e { free(r) }
        for (_, o) in outcomes { if case .value(let r)? = o.error { free(r) } }
        while let o = arrivals.popFirst() { if case .value(let r)? = o.error { free(r) } }
    }

    var isImap: Bool { kind == .imap || kind == .imapUnordered }

    /// Records a failure of a map/apply job, keeping the one at the lowest position (which then
    /// owns an error value's registry slot; imap jobs keep errors in their outcomes instead).
    func record(_ e: JobError, at position: Int) {
        if let f = firstError, f.position <= position {
            if case .value(let r) = e { pool.garbage.append(r) }
            return
        }
        if let f = firstError, case .value(let r) = f.error { pool.garbage.append(r) }
        firstError = (position, e)
    }

    /// Chunks read ahead and not yet consumed by an imap iterator.
    var lookahead: Int { chunksMade - chunksConsumed }
}
