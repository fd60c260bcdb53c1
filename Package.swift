// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "toolcfg",
    // Linux is what it is built and tested on (Glibc, OpenSSL, libargon2); the language needs Swift
    // 6.2 (InlineArray), hence the tools version.
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "ToolConfigKit", targets: ["ToolConfigKit"]),
        .executable(name: "toolcfg", targets: ["toolcfg"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
    ],
    targets: [
        // Thin system-library modules: headers and link flags, nothing else.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CArgon2", pkgConfig: "libargon2", providers: [.apt(["libargon2-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // The Linux kernel key service, where the application keeps its master key on desktops.
        .systemLibrary(name: "CKeyutils", pkgConfig: "libkeyutils", providers: [.apt(["libkeyutils-dev"])]),
        // The PBKDF2 hot loop (2,000 SHA-256 compressions per stored secret) in C over OpenSSL's
        // block function: see the comment at the top of pbkdf2_sha256.c for why and how it is checked.
        .target(
            name: "CFastPBKDF2",
            dependencies: ["COpenSSL"],
            // Optimised in debug builds too: the tests derive thousands of keys, and the SHA
            // intrinsics at -O0 run several times slower.
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        // A scheme-v2 value's whole re-encryption, a rotation's hot path (see v2_reencrypt.c).
        .target(name: "CRowCipher", dependencies: ["COpenSSL", "CFastPBKDF2"], cSettings: [.unsafeFlags(["-O2"])]),
        // The SQL functions toolcfg registers on SQLite: the read-back's digest, and the ones a
        // rotation's write phase reads its stage file through (see stage_file.c).
        .target(name: "CSQLiteFunctions", dependencies: ["CSQLite"], cSettings: [.unsafeFlags(["-O2"])]),
        // Reads migrations/*.sql at build time and writes them into the library as Swift source.
        .executableTarget(name: "MigrationEmbedder"),
        .plugin(name: "EmbedMigrations", capability: .buildTool(), dependencies: ["MigrationEmbedder"]),
        .target(
            name: "ToolConfigKit",
            dependencies: ["COpenSSL", "CArgon2", "CSQLite", "CSQLiteFunctions", "CPostgres", "CFastPBKDF2", "CRowCipher", "CKeyutils"],
            plugins: ["EmbedMigrations"]
        ),
        .executableTarget(
            name: "toolcfg",
            dependencies: [
                "ToolConfigKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        // The tests' shared helpers (scratch databases of either engine, the stand-in application,
        // the peers' runners), one target for every test target. It sees the library's `package`
        // declarations only: a plain target with `@testable import` would break `swift build -c
        // release`, which builds every target without testing enabled.
        .target(name: "ToolConfigTestSupport", dependencies: ["ToolConfigKit"], path: "Tests/ToolConfigTestSupport"),
        .testTarget(name: "ToolConfigKitTests", dependencies: ["ToolConfigKit", "ToolConfigTestSupport"]),
        // The command line's own pure parts (the progress line's text), through @testable import.
        .testTarget(name: "toolcfgTests", dependencies: ["toolcfg"])
    ],
    swiftLanguageModes: [.v6]
)
