// Installs the shared-memory layer: maps the process tree's arena when `mp` is installed.

extension MPModule {
    /// Maps the arena (once per process tree, before any fork: children inherit it) and adds
    /// `mp._arena()` → `{size =, bytes =, blocks =}` (a maintainer's view of arena usage).
    /// Stack: [-0, +0].
    static func installShared(_ s: LuaStack, _ t: Int32) {
        Arena.installIfNeeded()
        s.setFunction(t, "_arena") { s in
            let a = try Arena.require()
            let u = a.usage
            s.newTable(hashCount: 3)
            s.push(Int64(a.size)); s.rawSet(-2, field: "size")
            s.push(Int64(u.bytes)); s.rawSet(-2, field: "bytes")
            s.push(Int64(u.blocks)); s.rawSet(-2, field: "blocks")
            return 1
        }
    }
}
