// ChildRandom: every forked child (Process, pool worker) reseeds math.random from getrandom.
#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// A forked child inherits the host's `math.random` state, so without this every Process and
/// pool worker would draw the same numbers. As Python's `random` does after `fork()`, each
/// child reseeds from 128 fresh bits (`getrandom`) before any of its Lua code runs. A script
/// that wants reproducible draws calls `math.randomseed(x)` in the task: that comes after.
///
/// The standard library's own `math.randomseed` (a C function holding the generator state as
/// its upvalue) is remembered when `mp` is installed, so a script that replaced the global
/// with its own function is neither called nor bypassed: the generator `math.random` uses is
/// the one reseeded. Without the math library nothing happens.
enum ChildRandom {
    /// Registry field holding the original `math.randomseed`.
    private static let registryKey = "luamp.randomseed"

    /// At install: remembers `package.loaded.math.randomseed` if it is a C function. Stack: [-0, +0].
    static func capture(_ s: LuaStack) {
        s.preservingTop {
            guard s.rawGet(s.registryIndex(), field: "_LOADED") == .table,
                  s.rawGet(-1, field: "math") == .table,
                  s.rawGet(-1, field: "randomseed") == .function,
                  lua_iscfunction(s.L, -1) != 0 else { return }
            s.rawSet(s.registryIndex(), field: registryKey)
        }
    }

    /// In a fresh child: `randomseed(n1, n2)` with two random integers. Never throws (the call
    /// is protected; a failure leaves the inherited state). Stack: [-0, +0].
    static func reseed(_ s: LuaStack) {
        s.preservingTop {
            guard s.rawGet(s.registryIndex(), field: registryKey) == .function else { return }
            var seed: (Int64, Int64) = (0, 0)
            let got = withUnsafeMutableBytes(of: &seed) { luamp_getrandom($0.baseAddress, $0.count) }
            if got != MemoryLayout.size(ofValue: seed) {
                // No entropy yet (or no getrandom): still differ from the parent and siblings.
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                seed = (Int64(ts.tv_nsec) ^ (Int64(ts.tv_sec) << 30), Int64(getpid()))
            }
            s.push(seed.0)
            s.push(seed.1)
            _ = luamp_pcall(s.L, 2, 0, 0)
        }
    }
}
