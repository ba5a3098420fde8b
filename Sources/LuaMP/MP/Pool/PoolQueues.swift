// The pool's queues: Ring (a deque with index access: chunks in flight, re-queued chunks, callbacks)
// and JobList (jobs not yet done, in submission order, removed in O(1)).

/// A FIFO with index access and push-front (re-queued chunks go first). Taking from the front,
/// appending, and putting a few in front are O(1) amortised, so a worker with tens of thousands
/// of chunks in its pipe answers each one at constant cost.
struct Ring<T>: RandomAccessCollection {
    private var items: [T?] = []
    /// Index in `items` of element 0; the slots before it are nil.
    private var head = 0

    var startIndex: Int { 0 }
    var endIndex: Int { items.count - head }
    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }
    var first: T? { head < items.count ? items[head] : nil }

    subscript(i: Int) -> T {
        get { items[head + i]! }
        set { items[head + i] = newValue }
    }

    mutating func append(_ v: T) { items.append(v) }

    mutating func popFirst() -> T? {
        guard head < items.count else { return nil }
        let v = items[head]
        items[head] = nil
        head += 1
        compact()
        return v
    }

    @discardableResult
    mutating func removeFirst() -> T { popFirst()! }

    /// Puts `vs` in front, keeping their order.
    mutating func prepend<S: Collection>(_ vs: S) where S.Element == T {
        guard !vs.isEmpty else { return }
        if vs.count <= head {
            var i = head - vs.count
            head = i
            for v in vs { items[i] = v; i += 1 }
        } else {
            items = vs.map { Optional($0) } + items[head...]
            head = 0
        }
    }

    /// Removes the element at `i`, moving the ones before it (cheap near the front).
    @discardableResult
    mutating func remove(at i: Int) -> T {
        let v = self[i]
        var k = head + i
        while k > head { items[k] = items[k - 1]; k -= 1 }
        items[head] = nil
        head += 1
        compact()
        return v
    }

    /// Removes elements `r` (indices from the front), moving the ones before them.
    mutating func removeSubrange(_ r: ClosedRange<Int>) {
        let n = r.count
        var k = head + r.upperBound
        while k - n >= head { items[k] = items[k - n]; k -= 1 }
        for j in head..<(head + n) { items[j] = nil }
        head += n
        compact()
    }

    mutating func removeAll() { items.removeAll(); head = 0 }

    /// Drops the dead prefix once it is at least half of the storage.
    private mutating func compact() {
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }
}

/// What a `JobList` holds: an object that keeps its own place in the list.
protocol JobListMember: AnyObject {
    /// Its slot in the list it is in; -1 when in none.
    var listSlot: Int { get set }
}

extension PoolJob: JobListMember {}

/// The jobs of a pool that are not done, in submission order. A job knows its slot
/// (`listSlot`), so removing it when it finishes is O(1) amortised; the holes left by jobs
/// finishing out of order are squeezed out once they outnumber the jobs.
struct JobList<Job: JobListMember>: Sequence {
    private var items: [Job?] = []
    /// The slot number of `items[0]` (slots count up over the list's life).
    private var base = 0
    /// Index in `items` of the first job (the ones before it are nil).
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ job: Job) {
        job.listSlot = base + items.count
        items.append(job)
        count += 1
    }

    /// Removes `job` if it is in the list.
    mutating func remove(_ job: Job) {
        let i = job.listSlot - base
        guard i >= 0, i < items.count, items[i] === job else { return }
        items[i] = nil
        job.listSlot = -1
        count -= 1
        if count == 0 {
            base += items.count
            items.removeAll(keepingCapacity: true)
            head = 0
            return
        }
        while items[head] == nil { head += 1 }
        let holes = items.count - head - count
        if holes >= 64 && holes > count {
            var kept: [Job?] = []
            kept.reserveCapacity(count)
            base += items.count
            for case let j? in items[head...] { j.listSlot = base + kept.count; kept.append(j) }
            items = kept
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            base += head
            head = 0
        }
    }

    mutating func removeAll() {
        for case let j? in items { j.listSlot = -1 }
        base += items.count
        items.removeAll()
        head = 0
        count = 0
    }

    /// Iterates over a snapshot (jobs may be removed while the loop runs).
    func makeIterator() -> AnyIterator<Job> {
        var it = items[head...].makeIterator()
        return AnyIterator { while let j = it.next() { if let j { return j } }; return nil }
    }
}
