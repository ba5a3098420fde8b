// swift-tools-version:6.0
// luamp: Lua 5.4 scripts orchestrating fork()ed worker processes, the way Python's multiprocessing does.
import PackageDescription

let package = Package(
    name: "luamp",
    products: [
        .library(name: "LuaMP", targets: ["LuaMP"]),
        .executable(name: "luamp", targets: ["luamp"]),
    ],
    targets: [
        // Lua 5.4's headers and library, from Debian's liblua5.4-dev.
        .systemLibrary(
            name: "CLua",
            pkgConfig: "lua5.4",
            providers: [.apt(["liblua5.4-dev"])]
        ),
        // The one C target: Lua macro wrappers, the error trampoline, fork, futex, GNU-only libc.
        .target(
            name: "LuaMPShims",
            dependencies: ["CLua"],
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // The library: the Swift Lua layer, the mp runtime and the embedding API.
        .target(
            name: "LuaMP",
            dependencies: ["CLua", "LuaMPShims"]
        ),
        // GNU readline for the REPL (Debian's libreadline-dev).
        .systemLibrary(
            name: "CReadline",
            providers: [.apt(["libreadline-dev"])]
        ),
        // The command: a drop-in for the stock lua interpreter, plus the REPL.
        .executableTarget(
            name: "luamp",
            dependencies: ["LuaMP", "LuaMPShims", "CReadline"],
            // Release builds link the Swift runtime statically and bind every symbol at start-up:
            // start-up drops from ~3x to ~1.7x `lua5.4 -e ''`, and a forked child has ~40 fewer
            // mappings to copy and no lazy-binding faults (process start+join ~30% faster).
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "-z", "-Xlinker", "now"],
                                          .when(configuration: .release))]
        ),
        // A small app for Tests/cli/test_embedding.py: registers Swift functions, starts Dispatch
        // threads, runs scripts directly and through LuaForkServer. Test-only (it uses Dispatch,
        // which Sources/ never does).
        .executableTarget(
            name: "luamp-embed-harness",
            dependencies: ["LuaMP"],
            path: "Tests/EmbedHarness"
        ),
        .testTarget(
            name: "LuaMPTests",
            dependencies: ["LuaMP"]
        ),
        // The command's pure parts (option parsing), through @testable import of the executable.
        .testTarget(
            name: "luampTests",
            dependencies: ["luamp"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// DocC: `scripts/docs` sets LUAMP_DOCS=1 to add the documentation plugin, so ordinary builds and
// CI resolve no extra package (`swift package generate-documentation` needs it).
if Context.environment["LUAMP_DOCS"] == "1" {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}
