// swift-tools-version: 6.0
// libFuzzer targets for toolcfg's input parsers. Its own package, so the main package's builds
// never build them. Build and run them through scripts/fuzz.sh, which compiles every module with
// coverage instrumentation and AddressSanitizer and links libFuzzer (without its main, which
// CFuzzDriver replaces).
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder: the checkout's, whatever it is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let targets = ["FuzzCSV", "FuzzJSON", "FuzzJSONLines", "FuzzTriple", "FuzzMasterKey"]

let package = Package(
    name: "ToolcfgFuzz",
    dependencies: [.package(path: "..")],
    targets: [.target(name: "CFuzzDriver"), .target(name: "FuzzSupport", dependencies: ["CFuzzDriver"])]
        + targets.map { name in
            .executableTarget(name: name, dependencies: ["FuzzSupport", .product(name: "ToolConfigKit", package: root)])
        }
)
