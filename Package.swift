// swift-tools-version:6.0
// luamp: Lua 5.4 scripts orchestrating fork()ed worker processes, the way Python's multiprocessing does.
import PackageDescription

// Release links of the command and mp.so carry the Swift runtime and its C++ runtime inside:
// `-static-stdlib`, with scripts/link first on the library path so its `-lstdc++` takes
// libstdc++.a (scripts/link/libstdc++.so is a one-line linker script). Loading libstdc++.so and
// the Swift runtime's shared libraries costs more than the rest of a start (docs/startup.md).
let staticRuntime = ["-static-stdlib", "-L", Context.packageDirectory + "/scripts/link"]

let package = Package(
    name: "luamp",
    products: [
        .library(name: "LuaMP", targets: ["LuaMP", "LuaLink"]),
        // `require "mp"` from the stock lua5.4: libmp.so, installed as mp.so (luamp-dev-1.rockspec).
        .library(name: "mp", type: .dynamic, targets: ["LuaMPModule"]),
        .executable(name: "luamp", targets: ["luamp"]),
    ],
    targets: [
        // Lua 5.4's headers, from Debian's liblua5.4-dev (headers only: linking is LuaLink's job).
        .target(name: "CLua"),
        // The one place liblua5.4 is linked. Not in mp.so, whose lua_* bind to the host interpreter's.
        .target(name: "LuaLink", linkerSettings: [.linkedLibrary("lua5.4")]),
        // The one C target: Lua macro wrappers, the error trampoline, fork, futex, GNU-only libc.
        .target(
            name: "LuaMPShims",
            dependencies: ["CLua"],
            cSettings: [.define("_GNU_SOURCE")],
            // libcrypto (OpenSSL) for the cluster's SHA-256 (cluster_shims.c).
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        // The library: the Swift Lua layer, the mp runtime and the embedding API.
        .target(
            name: "LuaMP",
            dependencies: ["CLua", "LuaMPShims", "CHiredis"]
        ),
        // Redis's synchronous C client for mp.Pool/mp.Queue{address = "redis://…"} (docs/cluster.md).
        .systemLibrary(
            name: "CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        // GNU readline for the REPL (Debian's libreadline-dev).
        .systemLibrary(
            name: "CReadline",
            providers: [.apt(["libreadline-dev"])]
        ),
        // The command: a drop-in for the stock lua interpreter, plus the REPL.
        .executableTarget(
            name: "luamp",
            dependencies: ["LuaMP", "LuaMPShims", "LuaLink", "CReadline"],
            // Release builds link the Swift and C++ runtimes statically, bind every symbol at
            // start-up (a forked child has ~40 fewer mappings to copy and no lazy-binding faults)
            // and are not position-independent: no ~16,000 relative relocations to apply, and
            // ~80 fewer pages dirtied, per start (as Debian's python3). docs/startup.md.
            linkerSettings: [.unsafeFlags(staticRuntime + ["-Xlinker", "-z", "-Xlinker", "now", "-Xclang-linker", "-no-pie"],
                                          .when(configuration: .release))]
        ),
        // mp.so's entry point, luaopen_mp. The library carries the Swift runtime (a shared Swift
        // runtime adds ~8 ms to `require "mp"`), exports nothing else, and is never unloaded
        // (-z nodelete: the Swift runtime cannot be, and lua_close's dlclose would cost ~0.5 ms).
        .target(
            name: "LuaMPModule",
            dependencies: ["LuaMP"],
            linkerSettings: [.unsafeFlags(staticRuntime + [
                "-Xlinker", "--version-script=" + Context.packageDirectory + "/scripts/link/mp.map",
                "-Xlinker", "-z", "-Xlinker", "nodelete"])]
        ),
        // A small app for Tests/cli/test_embedding.py: registers Swift functions, starts Dispatch
        // threads, runs scripts directly and through LuaForkServer. Test-only (it uses Dispatch,
        // which Sources/ never does).
        .executableTarget(
            name: "luamp-embed-harness",
            dependencies: ["LuaMP", "LuaLink"],
            path: "Tests/EmbedHarness"
        ),
        .testTarget(
            name: "LuaMPTests",
            dependencies: ["LuaMP", "LuaLink"]
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
