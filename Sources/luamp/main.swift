// luamp: entry point — parse the command line, then run it (placeholder until the CLI lands).
import LuaMP
#if canImport(Glibc)
import Glibc
#endif

let argv = CommandLine.arguments
var lua: LuaRuntime?
do {
    lua = try LuaRuntime()
    if argv.count > 1 {
        try lua!.run(file: argv[1], arguments: Array(argv.dropFirst(2)))
    }
    lua!.finish()   // end of the main chunk: join children (placeholder until the CLI lands)
    exit(0)
} catch {
    let msg = "luamp: \(error)\n"; _ = msg.withCString { write(2, $0, strlen($0)) }
    lua?.finish()
    exit(1)
}
