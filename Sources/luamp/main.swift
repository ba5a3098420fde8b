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
    if argv.count >= 2 && argv[1] == "worker" { argv = workerCommand(argv) }
    return Interpreter(options: CommandLineOptions(parsing: argv)).run()
}

/// `luamp worker redis://… [options]` (docs/cluster.md): runs `mp.cluster_worker(args…)` and exits
/// with its status.
func workerCommand(_ argv: [String]) -> [String] {
    // Each argument as a Lua string literal of decimal escapes: any bytes are safe.
    let args = argv.dropFirst(2).map { a in "\"" + a.utf8.map { "\\" + String($0) }.joined() + "\"" }
    return [argv[0], "-e", "local c = mp.cluster_worker(" + args.joined(separator: ", ") + ") if c ~= 0 then os.exit(c) end"]
}

exit(luampMain())
