// SipHash-2-4 and the process tree's secret key: the MAC that lets only luamp's own bytecode load.

#if canImport(Glibc)
import Glibc
#endif
internal import LuaMPShims

/// SipHash-2-4 (Aumasson & Bernstein), 64-bit output, keyed by 128 bits.
struct SipHash24 {
    /// The MAC of `data` under `key`.
    static func mac(_ data: UnsafeRawBufferPointer, key: (UInt64, UInt64)) -> UInt64 {
        var v0: UInt64 = 0x736f6d6570736575 ^ key.0
        var v1: UInt64 = 0x646f72616e646f6d ^ key.1
        var v2: UInt64 = 0x6c7967656e657261 ^ key.0
        var v3: UInt64 = 0x7465646279746573 ^ key.1

        @inline(__always) func round() {
            v0 &+= v1; v1 = (v1 << 13) | (v1 >> 51); v1 ^= v0; v0 = (v0 << 32) | (v0 >> 32)
            v2 &+= v3; v3 = (v3 << 16) | (v3 >> 48); v3 ^= v2
            v0 &+= v3; v3 = (v3 << 21) | (v3 >> 43); v3 ^= v0
            v2 &+= v1; v1 = (v1 << 17) | (v1 >> 47); v1 ^= v2; v2 = (v2 << 32) | (v2 >> 32)
        }

        let n = data.count
        let blocks = n / 8
        var i = 0
        while i < blocks {
            let m = UInt64(littleEndian: data.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
            v3 ^= m
            round(); round()
            v0 ^= m
            i += 1
        }
        var last = UInt64(truncatingIfNeeded: n) << 56
        var j = 0
        while j < n & 7 {
            last |= UInt64(data[blocks * 8 + j]) << (8 * UInt64(j))
            j += 1
        }
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xff
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }
}

/// The secret shared by one luamp process tree: 128 random bits made once in the host (when `mp`
/// is installed) and inherited by every forked child. A process outside the tree does not know it,
/// so it can neither forge function chunks nor load ones sent to it.
enum CodecKey {
    /// The key, drawn from `getrandom` on first use (a `static let`: initialised exactly once).
    static let current: (UInt64, UInt64) = {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { buf in
            var got = 0
            while got < 16 {
                let r = luamp_getrandom(buf.baseAddress! + got, 16 - got)
                if r > 0 { got += r } else if r < 0 && errno != EINTR { fatalError("getrandom failed: errno \(errno)") }
            }
        }
        return words
    }()

    /// Creates the key now (called at install so every later fork inherits it).
    static func prepare() { _ = current }

    /// The MAC of a function chunk under this tree's key.
    static func mac(_ chunk: UnsafeRawBufferPointer) -> UInt64 { SipHash24.mac(chunk, key: current) }
}
