// CommandLineOptions: the pure parse of luamp's argv, as lua.c's `collectargs` does it.

/// What the command line asks for, before anything runs (`lua.c`'s `collectargs`).
///
/// Options come first; the first argument that is not an option is the script and everything
/// after it belongs to the script. `-e`/`-l`/`-W` are kept in order because they run in order.
struct CommandLineOptions: Equatable {
    /// One option that runs something, in command-line order (`lua.c`'s `runargs`).
    enum Action: Equatable {
        /// `-e stat`
        case execute(String)
        /// `-l name` or `-l g=name`: `require(module)` into the global `global`.
        case require(module: String, global: String)
        /// `-W`
        case warningsOn
    }

    /// Why the command line was refused; the message part after `luamp: `.
    enum Problem: Equatable {
        case unrecognized(String)
        case needsArgument(String)

        var message: String {
            switch self {
            case .unrecognized(let o): return "unrecognized option '\(o)'"
            case .needsArgument(let o): return "'\(o)' needs argument"
            }
        }
    }

    /// The whole argv, program name first (the `arg` table is built from it).
    var arguments: [String]
    /// `-i`: the REPL after the script.
    var interactive = false
    /// `-v` (also implied by `-i`).
    var showVersion = false
    /// `-E`: ignore `LUA_INIT*`, `LUA_PATH*`, `LUA_CPATH*`.
    var ignoreEnvironment = false
    /// Some `-e` was given (then no REPL starts by default).
    var hasExecute = false
    /// `-h` / `--help`.
    var help = false
    /// `-e`, `-l`, `-W` in order.
    var actions: [Action] = []
    /// Index of the script in `arguments`, nil when there is none.
    var scriptIndex: Int?
    /// Set when the command line is invalid (usage goes to stderr, exit 1).
    var problem: Problem?
    /// `--trace FILE.json`, `--trace-html FILE.html`, `--progress`, `--label-output`.
    var traceFile: String?
    var traceHTML: String?
    var progress = false
    var labelOutput = false
    /// `luamp trace FILE.json [-o FILE.html]`: argv[1] is `trace` followed by those arguments.
    /// The command runs it unless a file named `trace` exists (then that is the script, as in lua).
    var traceCommand: TraceCommand?

    struct TraceCommand: Equatable {
        var input: String
        var output: String?
    }

    /// The program name for messages (`argv[0]`, `luamp` if empty).
    var programName: String {
        if let p = arguments.first, !p.isEmpty { return p }
        return "luamp"
    }

    /// The script path; nil when there is no script or it is standard input (`-`).
    var scriptPath: String? {
        guard let i = scriptIndex else { return nil }
        if arguments[i] == "-" && arguments[i - 1] != "--" { return nil }
        return arguments[i]
    }

    /// Parses argv (program name first).
    init(parsing argv: [String]) {
        arguments = argv
        if argv.count >= 3 && argv[1] == "trace" {
            var input: String?
            var output: String?
            var j = 2
            var ok = true
            while j < argv.count && ok {
                if argv[j] == "-o" && j + 1 < argv.count {
                    output = argv[j + 1]
                    j += 2
                } else if input == nil && !argv[j].hasPrefix("-") {
                    input = argv[j]; j += 1
                } else {
                    ok = false
                }
            }
            if ok, let inp = input { traceCommand = TraceCommand(input: inp, output: output) }
        }
        var i = 1
        while i < argv.count {
            let a = Array(argv[i].utf8)
            guard a.first == UInt8(ascii: "-") else { scriptIndex = i; return }
            let rest = a.count > 2 ? String(decoding: a[2...], as: UTF8.self) : ""
            let option = a.count > 1 ? a[1] : 0
            switch option {
            case 0:   // "-": standard input is the script
                scriptIndex = i
                return
            case UInt8(ascii: "-"):
                if argv[i] == "--help" { help = true; return }
                switch argv[i] {
                case "--progress": progress = true; i += 1; continue
                case "--label-output": labelOutput = true; i += 1; continue
                case "--trace", "--trace-html":
                    guard i + 1 < argv.count else { problem = .needsArgument(argv[i]); return }
                    if argv[i] == "--trace" { traceFile = argv[i + 1] } else { traceHTML = argv[i + 1] }
                    i += 2
                    continue
                default: break
                }
                guard rest.isEmpty else { problem = .unrecognized(argv[i]); return }
                if i + 1 < argv.count { scriptIndex = i + 1 }
                return
            case UInt8(ascii: "E"), UInt8(ascii: "W"), UInt8(ascii: "i"), UInt8(ascii: "v"), UInt8(ascii: "h"):
                guard rest.isEmpty else { problem = .unrecognized(argv[i]); return }
                switch option {
                case UInt8(ascii: "E"): ignoreEnvironment = true
                case UInt8(ascii: "W"): actions.append(.warningsOn)
                case UInt8(ascii: "i"): interactive = true; showVersion = true
                case UInt8(ascii: "h"): help = true; return
                default: showVersion = true
                }
            case UInt8(ascii: "e"), UInt8(ascii: "l"):
                var value = rest
                if value.isEmpty {
                    i += 1
                    guard i < argv.count, !argv[i].hasPrefix("-") else {
                        problem = .needsArgument(argv[i - 1])
                        return
                    }
                    value = argv[i]
                }
                if option == UInt8(ascii: "e") {
                    hasExecute = true
                    actions.append(.execute(value))
                } else if let eq = value.firstIndex(of: "=") {
                    actions.append(.require(module: String(value[value.index(after: eq)...]),
                                            global: String(value[..<eq])))
                } else {
                    actions.append(.require(module: value, global: value))
                }
            default:
                problem = .unrecognized(argv[i])
                return
            }
            i += 1
        }
    }

    /// The usage text `lua` prints, with this program's name.
    static func usage(_ program: String) -> String {
        """
        usage: \(program) [options] [script [args]]
               \(program) trace FILE.json [-o FILE.html]
        Available options are:
          -e stat   execute string 'stat'
          -i        enter interactive mode after executing 'script'
          -l mod    require library 'mod' into global 'mod'
          -l g=mod  require library 'mod' into global 'g'
          -v        show version information
          -E        ignore environment variables
          -W        turn warnings on
          -h        show this help
          --trace FILE.json       record a trace of every process (Perfetto, chrome://tracing)
          --trace-html FILE.html  write the trace as a self-contained HTML timeline
          --progress              progress bars on stderr for every pool call
          --label-output          prefix each child's output lines with [its name]
          --        stop handling options
          -         stop handling options and execute stdin

        """
    }
}
