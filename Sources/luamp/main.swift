// luamp: entry point — parse the command line, run it, exit with its status.
#if canImport(Glibc)
import Glibc
#endif

/// Runs in its own function so the runtime is released (the Lua state closed, finalizers run)
/// before `exit`.
func luampMain() -> Int32 {
    // argv read directly: `CommandLine.arguments` builds its array through a lazy global and a
    // generic map (~0.1 ms of a ~2 ms start).
    var argv: [String] = []
    argv.reserveCapacity(Int(CommandLine.argc))
    for i in 0..<Int(CommandLine.argc) { argv.append(CommandLine.unsafeArgv[i].map { String(cString: $0) } ?? "") }
    return Interpreter(options: CommandLineOptions(parsing: argv)).run()
}

exit(luampMain())
