// orchestrator: a Swift app that embeds luamp, gives scripts a Swift function, and runs orchestrate.lua.
//
//   orchestrator [--threads] [script.lua] [words...]
//     --threads   behave like a real app with Dispatch threads: run the script through a fork server
import Dispatch
import Glibc
import LuaMP

/// The Swift function scripts call: FNV-1a, 32 bits, of the string's bytes.
func installHostFunctions(_ lua: LuaRuntime) {
    lua.register("host_checksum") { args in
        let word = try args.argument(0, as: String.self)
        var h: UInt32 = 2_166_136_261
        for b in word.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return [.integer(Int64(h))]
    }
}

// First thing in main: in the fork-server copy of this app this never returns.
LuaForkServer.serveIfRequested(setup: installHostFunctions)

var args = Array(CommandLine.arguments.dropFirst())
let threaded = args.first == "--threads"
if threaded { args.removeFirst() }
let defaultScript = String(#filePath.dropLast("Sources/orchestrator/main.swift".count)) + "orchestrate.lua"
let script = args.first.map { $0.hasSuffix(".lua") } == true ? args.removeFirst() : defaultScript

do {
    if threaded {
        // A real app: threads exist before any script runs, so fork only inside the server.
        DispatchQueue.global().async { while true { sleep(1) } }
        let server = try LuaForkServer.start()
        let lua = try server.makeRuntime()
        try lua.run(file: script, arguments: args)
        lua.close()
        server.stop()
    } else {
        // A single-threaded tool: the runtime can fork right here.
        let lua = try LuaRuntime()
        installHostFunctions(lua)
        try lua.run(file: script, arguments: args)
        lua.finish()
    }
} catch {
    LuaRuntime.writeError("orchestrator: \(error)\n")
    exit(1)
}
