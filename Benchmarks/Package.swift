// swift-tools-version: 6.1
// Benchmark suite for toolcfg. A separate package on purpose: the root package's `swift build` /
// `swift test` never resolve or build ordo-one/benchmark. Run it with `scripts/bench.sh` (or
// `swift package benchmark` from this directory).
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder: the checkout's, whatever it is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "ToolcfgBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
        // Only the MallocInterposer trait: the default set also enables RuntimeInterposer, which on
        // Linux + Swift 6.3 pulls ordo-one/swift-runtime-interposer (not available here).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"])
    ],
    targets: []
)

// One executable target per suite, in Benchmarks/<Target>/ (the layout BenchmarkPlugin expects).
package.targets += [
    .executableTarget(
        name: "ToolcfgBenchmarks",
        dependencies: [
            .product(name: "ToolConfigKit", package: root),
            .product(name: "Benchmark", package: "benchmark")
        ],
        path: "Benchmarks/ToolcfgBenchmarks",
        plugins: [
            .plugin(name: "BenchmarkPlugin", package: "benchmark")
        ]
    )
]
