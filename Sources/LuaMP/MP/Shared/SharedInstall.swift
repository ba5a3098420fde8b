// Installs the shared-memory layer: maps the process tree's arena when `mp` is installed.

extension MPModule {
    /// Maps the arena (once per process tree, before any fork: children inherit it) and adds
    /// `mp._arena()` → `{size =, bytes =, blocks =, holds =, deferred =}` (a maintainer's view of
    /// arena usage; `holds`: objects this process holds, `deferred`: releases waiting for children).
    /// Stack: [-0, +0].
    static func installShared(_ s: LuaStack, _ t: Int32) {
        Arena.installIfNeeded()
        s.setFunction(t, "_arena") { s in
            let a = try Arena.require()
            let u = a.usage
            s.newTable(hashCount: 5)
            let h = SharedHolds.stats
            s.push(Int64(h.holds)); s.rawSet(-2, field: "holds")
            s.push(Int64(h.deferred)); s.rawSet(-2, field: "deferred")
            s.push(Int64(a.size)); s.rawSet(-2, field: "size")
            s.push(Int64(u.bytes)); s.rawSet(-2, field: "bytes")
            s.push(Int64(u.blocks)); s.rawSet(-2, field: "blocks")
            return 1
        }
    }
}
