// luamp: entry point — parse the command line, then run it (placeholder until the CLI lands).
import LuaMP
#if canImport(Glibc)
import Glibc
#endif

let argv = CommandLine.arguments
do {
    let lua = try LuaRuntime()
    if argv.count > 1 {
        try lua.run(file: argv[1], arguments: Array(argv.dropFirst(2)))
    }
    exit(0)
} catch {
    let msg = "luamp: \(error)\n"; _ = msg.withCString { write(2, $0, strlen($0)) }
    exit(1)
}
