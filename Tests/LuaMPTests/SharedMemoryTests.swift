// The shared-memory layer in-process: arena allocation and page return, robust mutex, futex event count.
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import LuaMP

/// Shmem (kB) of this process from /proc/self/status (`RssShmem`).
private func rssShmemKB() -> Int {
    guard let f = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, 256, f) != nil {
        let s = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if s.hasPrefix("RssShmem:") {
            return Int(s.split(separator: " ").dropFirst().first.map(String.init) ?? "") ?? -1
        }
    }
    return -1
}

@Suite(.serialized) struct SharedMemoryTests {
    let arena: Arena

    init() throws {
        guard let a = Arena.installIfNeeded() else { throw LuaRaise(Arena.mapError ?? "no arena") }
        arena = a
    }

    @Test func arenaIsLargeAndHasAnId() {
        #expect(arena.size >= 256 << 20)
        #expect(arena.id != 0)
    }

    @Test func smallBlocksAreDistinctAlignedAndRecycled() throws {
        var offs: [UInt64] = []
        for n in [0, 1, 15, 16, 17, 100, 1000, 2032] {
            let o = try arena.allocate(n)
            #expect(o % 16 == 0 && o >= Arena.dataStart)
            #expect(arena.isLiveBlock(o, minBytes: n))
            #expect(arena.requestedSize(o) == n)
            memset(arena.pointer(o), 0xAB, n)
            offs.append(o)
        }
        #expect(Set(offs).count == offs.count)
        let last = offs.removeLast()
        arena.free(last)
        #expect(!arena.isLiveBlock(last))
        let again = try arena.allocate(2000)
        #expect(again == last)            // the free list hands the block back
        arena.free(again)
        for o in offs { arena.free(o) }
    }

    @Test func offsetsAndPointersRoundTrip() throws {
        let o = try arena.allocate(64, zeroed: true)
        let p = arena.pointer(o)
        #expect(arena.offset(of: p) == o)
        #expect(p.load(as: UInt64.self) == 0)
        arena.free(o)
    }

    @Test func largeBlocksArePageAlignedAndGiveTheirPagesBack() throws {
        let n = 64 << 20
        let before = rssShmemKB()
        let o = try arena.allocate(n)
        #expect((o - UInt64(Arena.blockHeader)) % Arena.page == 0)
        memset(arena.pointer(o), 1, n)
        let touched = rssShmemKB()
        #expect(touched - before >= 60 * 1024)
        arena.free(o)
        let after = rssShmemKB()
        #expect(touched - after >= 60 * 1024, "Shmem went \(before) → \(touched) → \(after) kB")
        let o2 = try arena.allocate(n)      // recycled, and zero where it was released
        #expect(o2 == o)
        #expect(arena.pointer(o2 + 8192).load(as: UInt64.self) == 0)
        arena.free(o2)
    }

    @Test func blocksOf512MiBFit() throws {
        let o = try arena.allocate(512 << 20)
        #expect(arena.isLiveBlock(o, minBytes: 512 << 20))
        arena.free(o)
        #expect(throws: ArenaFull.self) { try arena.allocate(Int(arena.size)) }
    }

    @Test func robustMutexLocksTimesOutAndReportsSelfDeadlock() throws {
        let o = try arena.allocate(RobustMutex.size)
        let m = try RobustMutex.initialize(at: arena.pointer(o), kind: .errorCheck)
        #expect(try m.lock(until: .never) == .acquired)
        #expect(throws: SelfDeadlock.self) { try m.tryLock() }
        #expect(m.unlock())
        #expect(!m.unlock())                 // EPERM: not held
        #expect(try m.tryLock() == .acquired)
        #expect(m.unlock())
        arena.free(o)
    }

    @Test func recursiveRobustMutexNests() throws {
        let o = try arena.allocate(RobustMutex.size)
        let m = try RobustMutex.initialize(at: arena.pointer(o), kind: .recursive)
        #expect(try m.lock() == .acquired)
        #expect(try m.lock() == .acquired)
        #expect(m.unlock() && m.unlock())
        #expect(!m.unlock())
        arena.free(o)
    }

    @Test func eventCountTimesOutThenSeesNotify() throws {
        let o = try arena.allocate(EventCount.size)
        let e = EventCount.initialize(at: arena.pointer(o))
        let seen = e.prepare()
        let t0 = Deadline.monotonicNow()
        #expect(try e.wait(seen: seen, until: Deadline(seconds: 0.05)) == false)
        #expect(Deadline.monotonicNow() - t0 >= 50_000_000)
        e.notify()
        #expect(try e.wait(seen: seen, until: .never) == true)   // already changed: no sleep
        #expect(e.prepare() == seen &+ 1)
        var polls = 0
        #expect(try e.wait(seen: e.prepare(), until: .never, poll: { polls += 1; return true }) == true)
        #expect(polls == 1)
        arena.free(o)
    }

    @Test func deadlinesConvertLuaSeconds() {
        #expect(Deadline(seconds: nil).isNever)
        #expect(Deadline(seconds: -1).hasPassed)
        #expect(Deadline(seconds: 0).hasPassed)
        let d = Deadline(seconds: 10)
        #expect(!d.hasPassed && d.remaining > 9_000_000_000)
        #expect(d.nextSlice == Deadline.slice)
    }
}
