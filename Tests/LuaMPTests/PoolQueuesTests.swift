// The pool's queues in-process: Ring (front removal, push-front, removal near the front, compaction) and JobList (O(1) removal, order kept), against plain arrays.
import Testing
@testable import LuaMP

private final class Member: JobListMember {
    let id: Int
    var listSlot = -1
    init(_ id: Int) { self.id = id }
}

/// A small deterministic generator (the same sequence every run).
private struct Steps {
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next(_ n: Int) -> Int {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return Int(x % UInt64(n))
    }
}

@Suite struct PoolQueuesTests {
    @Test func ringMatchesAnArrayUnderMixedOperations() {
        var ring = Ring<Int>()
        var model: [Int] = []
        var rng = Steps()
        var next = 0
        for _ in 0..<20_000 {
            switch rng.next(8) {
            case 0, 1, 2:
                ring.append(next); model.append(next); next += 1
            case 3, 4:
                #expect(ring.popFirst() == (model.isEmpty ? nil : model.removeFirst()))
            case 5:
                let k = rng.next(4)
                let vs = (0..<k).map { next + $0 }
                next += k
                ring.prepend(vs); model.insert(contentsOf: vs, at: 0)
            case 6:
                if !model.isEmpty {
                    let i = rng.next(min(model.count, 5))
                    #expect(ring.remove(at: i) == model.remove(at: i))
                }
            default:
                if model.count >= 3 {
                    let k = 1 + rng.next(model.count - 2)
                    ring.removeSubrange(1...k); model.removeSubrange(1...k)
                }
            }
            #expect(ring.count == model.count)
            #expect(ring.first == model.first)
        }
        #expect(Array(ring) == model)
        #expect(ring.lastIndex(where: { $0 % 2 == 0 }) == model.lastIndex(where: { $0 % 2 == 0 }))
    }

    @Test func ringEmptiesAndRefills() {
        var ring = Ring<Int>()
        for i in 0..<1000 { ring.append(i) }
        for i in 0..<1000 { #expect(ring.removeFirst() == i) }
        #expect(ring.isEmpty && ring.popFirst() == nil)
        ring.prepend([7, 8])
        ring.append(9)
        #expect(Array(ring) == [7, 8, 9])
    }

    @Test func jobListKeepsOrderWhileRemovingInAnyOrder() {
        var list = JobList<Member>()
        var model: [Member] = []
        var rng = Steps()
        var next = 0
        for _ in 0..<20_000 {
            if model.isEmpty || rng.next(5) < 2 {
                let m = Member(next); next += 1
                list.append(m); model.append(m)
            } else {
                // Mostly the oldest (tasks finishing in order), sometimes any.
                let i = rng.next(4) == 0 ? rng.next(model.count) : 0
                let m = model.remove(at: i)
                list.remove(m)
                #expect(m.listSlot == -1)
                list.remove(m)                       // a second removal is a no-op
            }
            #expect(list.count == model.count)
        }
        #expect(list.map(\.id) == model.map(\.id))
        let outsider = Member(-1)
        list.remove(outsider)
        #expect(list.count == model.count)
        for m in list { list.remove(m) }             // removal while iterating (a snapshot)
        #expect(list.isEmpty && Array(list).isEmpty)
        let m = Member(0)
        list.append(m)
        #expect(list.map(\.id) == [0])
        list.removeAll()
        #expect(list.isEmpty && m.listSlot == -1)
    }
}
