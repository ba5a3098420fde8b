// Runtimes created on several threads at once (an embedding app may, and `swift test` does): the
// once-per-process set-up (arena, codec key, handle kinds, queue fault hook) must not race.
import Dispatch
import Synchronization
import Testing
@testable import LuaMP

@Suite(.serialized) struct ConcurrentRuntimesTests {
    /// Each thread makes runtimes and sends one object of every sendable kind through the codec,
    /// which looks each kind up in the handle registry that every install used to write.
    @Test func runtimesOnManyThreadsInstallAndSendObjects() throws {
        let threads = 8, perThread = 12
        let script = """
            local n = 0
            for _, o in ipairs({mp.Queue(), mp.SimpleQueue(), mp.JoinableQueue(), mp.Lock(), mp.RLock(),
                                mp.Semaphore(), mp.BoundedSemaphore(), mp.Event(), mp.Condition(),
                                mp.Barrier(1), mp.Value('i', 1), mp.Array('d', 2), (mp.Pipe())}) do
              local back = mp.loads(mp.dumps(o))
              if getmetatable(back).__mpkind == getmetatable(o).__mpkind then n = n + 1 end
            end
            return n
            """
        let results = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            for _ in 0..<perThread {
                var n = -1
                if let lua = try? LuaRuntime(), let v = try? lua.evaluate(script), case .integer(let k)? = v.first { n = Int(k) }
                results.withLock { $0.append(n) }
            }
        }
        let all = results.withLock { $0 }
        #expect(all.count == threads * perThread)
        #expect(all.allSatisfy { $0 == 13 }, "every runtime sent all 13 kinds: \(all)")
    }
}
