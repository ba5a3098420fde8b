// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104): the MAC on every message that crosses Redis.

/// SHA-256, written from FIPS 180-4 (checked against Python's hashlib in the cluster tests).
/// Plain Swift with no dependency: the cluster needs one hash, a few hundred MB/s is plenty next
/// to the network, and a crypto library would be the only other way to get it (docs/cluster.md).
struct SHA256 {
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    private var block = [UInt8](repeating: 0, count: 64)
    private var used = 0
    private var total: UInt64 = 0

    init() {}

    /// Feeds `data`.
    mutating func update(_ data: UnsafeRawBufferPointer) {
        var i = 0
        let n = data.count
        total &+= UInt64(n)
        if used > 0 {
            while i < n && used < 64 { block[used] = data[i]; used += 1; i += 1 }
            if used == 64 { block.withUnsafeBytes { compress($0.baseAddress!) }; used = 0 }
        }
        while n - i >= 64 {
            compress(data.baseAddress! + i)
            i += 64
        }
        while i < n { block[used] = data[i]; used += 1; i += 1 }
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The 32-byte digest (the hasher is spent afterwards).
    mutating func finish() -> [UInt8] {
        let bits = total &* 8
        var pad: [UInt8] = [0x80]
        let rem = Int((total + 1) % 64)
        pad += [UInt8](repeating: 0, count: rem <= 56 ? 56 - rem : 120 - rem)
        for j in (0..<8).reversed() { pad.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(j)))) }
        let saved = total
        update(pad)
        total = saved
        var out = [UInt8]()
        out.reserveCapacity(32)
        for w in [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7] {
            out += [UInt8(w >> 24), UInt8(truncatingIfNeeded: w >> 16), UInt8(truncatingIfNeeded: w >> 8), UInt8(truncatingIfNeeded: w)]
        }
        return out
    }

    static func hash(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        var s = SHA256()
        s.update(data)
        return s.finish()
    }

    private mutating func compress(_ p: UnsafeRawPointer) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { m in compress(p, m) }
    }

    private mutating func compress(_ p: UnsafeRawPointer, _ m: UnsafeMutableBufferPointer<UInt32>) {
        for t in 0..<16 {
            m[t] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self))
        }
        for t in 16..<64 {
            let x = m[t - 15], y = m[t - 2]
            let s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3)
            let s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
            m[t] = m[t - 16] &+ s0 &+ m[t - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = h
        for t in 0..<64 {
            let S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let ch = (e & f) ^ (~e & g)
            let t1 = hh &+ S1 &+ ch &+ SHA256.k.withUnsafeBufferPointer { $0[t] } &+ m[t]
            let S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let maj = (a & b) ^ (a & c) ^ (b & c)
            let t2 = S0 &+ maj
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e, h.5 &+ f, h.6 &+ g, h.7 &+ hh)
    }

    @inline(__always) private func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
}

/// HMAC-SHA256 under one key, with the padded key blocks computed once.
struct HMACSHA256 {
    private let inner: [UInt8]
    private let outer: [UInt8]

    init(key: [UInt8]) {
        var k = key.count > 64 ? key.withUnsafeBytes { SHA256.hash($0) } : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        inner = k.map { $0 ^ 0x36 }
        outer = k.map { $0 ^ 0x5c }
    }

    /// The 32-byte MAC of the concatenation of `parts`.
    func mac(_ parts: [UnsafeRawBufferPointer]) -> [UInt8] {
        var i = SHA256()
        i.update(inner)
        for p in parts { i.update(p) }
        let ih = i.finish()
        var o = SHA256()
        o.update(outer)
        o.update(ih)
        return o.finish()
    }

    func mac(_ data: [UInt8]) -> [UInt8] { data.withUnsafeBytes { mac([$0]) } }

    /// Compares two MACs in time independent of where they differ.
    static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in 0..<b.count { d |= a[i] ^ b[i] }
        return d == 0
    }
}
