// luamp: entry point — parse the command line, run it, exit with its status.
#if canImport(Glibc)
import Glibc
#endif

/// Runs in its own function so the runtime is released (the Lua state closed, finalizers run)
/// before `exit`.
func luampMain() -> Int32 {
    Interpreter(options: CommandLineOptions(parsing: CommandLine.arguments)).run()
}

exit(luampMain())
