// swift-tools-version:6.0
// An app that embeds luamp: registers a Swift function and runs an orchestration script whose
// worker processes call it. Depends on the luamp package by path (this repository's root).
import PackageDescription

let package = Package(
    name: "embedding-example",
    dependencies: [
        .package(name: "luamp", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "orchestrator",
            dependencies: [.product(name: "LuaMP", package: "luamp")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
