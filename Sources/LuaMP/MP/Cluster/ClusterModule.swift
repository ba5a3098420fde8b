// mp.Pool / mp.Queue / mp.JoinableQueue with an address: the switch to the cluster (docs/cluster.md),
// and the loader of the cluster's Lua code (compiled on first use only).
#if canImport(Glibc)
import Glibc
#endif
internal import CLua
internal import LuaMPShims

extension MPModule {
    static let clusterRegistryKey = "luamp.cluster"

    /// The constructors' switch, compiled at install (a few hundred bytes): `mp.Pool{address = …}`
    /// (or any `mp.Pool(…)` while LUAMP_ADDRESS is set, unless `address = false`), and
    /// `mp.Queue{address = …, name = …}` (or `{name = …}` with LUAMP_ADDRESS) go to the cluster;
    /// everything else to the local constructors, unchanged.
    private static let switchSource = #"""
local mp, Pool, Queue, JoinableQueue, load, getenv = ...
local function env() local e = getenv("LUAMP_ADDRESS") return e ~= nil and e ~= "" end
mp.Pool = function(a, ...)
  local t = type(a) == "table"
  if (t and a.address) or ((not t or a.address == nil) and env()) then return (load().Pool(a, ...)) end
  return (Pool(a, ...))
end
local function named(a) return type(a) == "table" and (a.address or (a.address == nil and a.name ~= nil and env())) end
mp.Queue = function(a, ...)
  if named(a) then return (load().Queue(a)) end
  return (Queue(a, ...))
end
mp.JoinableQueue = function(a, ...)
  if named(a) then return (load().JoinableQueue(a)) end
  return (JoinableQueue(a, ...))
end
mp.cluster_worker = function(...) return load().worker(...) end
"""#

    /// Installs the switch over the local constructors (after `installPools` and `installQueues`).
    static func installCluster(_ s: LuaStack, _ t: Int32) {
        let t = s.absIndex(t)
        s.preservingTop {
            do {
                try s.load(switchSource, name: "=mp.cluster", mode: "t")
            } catch {
                return   // cannot happen (a constant chunk) unless memory ran out: keep the local ones
            }
            s.pushValue(t)
            s.rawGet(t, field: "Pool")
            s.rawGet(t, field: "Queue")
            s.rawGet(t, field: "JoinableQueue")
            s.pushValue(t)
            s.pushFunction(name: "load", upvalues: 1) { s in try loadCluster(s) }
            s.pushFunction(name: "getenv") { s in
                guard let n = s.toString(1), let v = getenv(n) else { s.pushNil(); return 1 }
                s.push(String(cString: v))
                return 1
            }
            _ = try? s.pcall(nargs: 6, nresults: 0)
        }
    }

    /// Returns the cluster module {Pool, Queue, JoinableQueue, worker}, loading its chunks once per
    /// Lua state. Stack: [-0, +1].
    private static func loadCluster(_ s: LuaStack) throws -> Int32 {
        if s.rawGet(s.registryIndex(), field: clusterRegistryKey) == .table { return 1 }
        s.pop()
        let top = s.top
        // C = common(native, mp)
        try s.load(ClusterSource.common, name: "=mp.cluster.common", mode: "t")
        pushClusterNative(s)
        s.pushValue(s.upvalueIndex(2))   // the mp table
        try s.pcall(nargs: 2, nresults: 1)
        let c = s.top
        try s.load(ClusterSource.globals, name: "=mp.cluster.globals", mode: "t")
        s.pushValue(c)
        try s.pcall(nargs: 1, nresults: 0)
        try s.load(ClusterSource.scripts, name: "=mp.cluster.scripts", mode: "t")
        try s.pcall(nargs: 0, nresults: 1)
        let scripts = s.top
        let module = s.top + 1
        s.newTable()
        for (name, source, field) in [("queue", ClusterSource.queue, ""), ("pool", ClusterSource.pool, ""),
                                      ("worker", ClusterSource.worker, "main")] {
            try s.load(source, name: "=mp.cluster." + name, mode: "t")
            s.pushValue(c)
            s.pushValue(scripts)
            try s.pcall(nargs: 2, nresults: 1)
            if field.isEmpty {
                // copy its constructors into the module
                lua_pushnil(s.L)
                while lua_next(s.L, -2) != 0 {
                    lua_pushvalue(s.L, -2)
                    lua_pushvalue(s.L, -2)
                    lua_rawset(s.L, module)
                    s.pop()
                }
            } else {
                s.rawGet(-1, field: field)
                s.rawSet(module, field: name)
            }
            s.pop()
        }
        s.pushValue(module)
        s.rawSet(s.registryIndex(), field: clusterRegistryKey)
        lua_copy(s.L, module, top + 1)
        s.top = top + 1
        return 1
    }
}
