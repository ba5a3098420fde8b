// The lua.c-style option parse as a pure value: flags, script index, ordered actions, problems.
import Testing
@testable import luamp

@Suite struct CommandLineOptionsTests {
    private func parse(_ args: String...) -> CommandLineOptions {
        CommandLineOptions(parsing: ["luamp"] + args)
    }

    @Test func noArgumentsMeansNoScriptAndNoActions() {
        let o = parse()
        #expect(o.scriptIndex == nil && o.actions.isEmpty && o.problem == nil)
        #expect(!o.interactive && !o.showVersion && !o.hasExecute && !o.ignoreEnvironment)
    }

    @Test func scriptIndexIsTheFirstNonOption() {
        let o = parse("-e", "x=1", "script.lua", "-v", "a")
        #expect(o.scriptIndex == 3)
        #expect(o.scriptPath == "script.lua")
        #expect(!o.showVersion)   // -v after the script belongs to the script
    }

    @Test func executeAndRequireKeepCommandLineOrder() {
        let o = parse("-eprint(1)", "-l", "str=string", "-W", "-e", "print(2)", "-lmath")
        #expect(o.actions == [.execute("print(1)"), .require(module: "string", global: "str"), .warningsOn,
                              .execute("print(2)"), .require(module: "math", global: "math")])
        #expect(o.hasExecute)
    }

    @Test func interactiveImpliesVersion() {
        let o = parse("-i")
        #expect(o.interactive && o.showVersion)
        #expect(parse("-v").showVersion && !parse("-v").interactive)
    }

    @Test func dashIsStandardInputUnlessAfterDoubleDash() {
        let o = parse("-", "x")
        #expect(o.scriptIndex == 1 && o.scriptPath == nil)
        let p = parse("--", "-")
        #expect(p.scriptIndex == 2 && p.scriptPath == "-")
        #expect(parse("--").scriptIndex == nil)
        #expect(parse("--", "-x").scriptPath == "-x")
    }

    @Test func ignoreEnvironment() {
        #expect(parse("-E", "-e", "").ignoreEnvironment)
    }

    @Test func unknownOptionsAreProblems() {
        for bad in ["-x", "---", "-Ex", "-vv", "-iv", "-Wx", "--x", "-hx"] {
            #expect(parse(bad).problem == .unrecognized(bad), "\(bad)")
        }
        #expect(parse("-x").problem?.message == "unrecognized option '-x'")
    }

    @Test func missingArgumentsAreProblems() {
        #expect(parse("-e").problem == .needsArgument("-e"))
        #expect(parse("-l").problem == .needsArgument("-l"))
        #expect(parse("-e", "-i").problem == .needsArgument("-e"))
        #expect(parse("-e").problem?.message == "'-e' needs argument")
    }

    @Test func anOptionArgumentMayBeEmptyOrSpaced() {
        #expect(parse("-e", "").actions == [.execute("")])
        #expect(parse("-e ").actions == [.execute(" ")])
    }

    @Test func helpStopsParsing() {
        #expect(parse("-h").help)
        #expect(parse("--help", "-x").help && parse("--help", "-x").problem == nil)
    }

    @Test func programNameComesFromArgvZero() {
        #expect(CommandLineOptions(parsing: ["./bin/luamp", "-v"]).programName == "./bin/luamp")
        #expect(CommandLineOptions(parsing: [""]).programName == "luamp")
    }

    @Test func usageNamesTheProgram() {
        #expect(CommandLineOptions.usage("lx").hasPrefix("usage: lx [options] [script [args]]\n"))
    }
}
