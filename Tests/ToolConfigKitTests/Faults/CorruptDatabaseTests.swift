import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// Damaged databases, as a disk or a careless copy leaves them: 200 copies of one database, cut
/// short or with bytes flipped in its pages, or with one byte of one ciphertext flipped. verify-keys,
/// export and rotate each end 0, 65 or 74 (never a crash), a command that fails leaves the file
/// byte for byte as it was and writes no output file, and the read-only commands never write.
@Suite("Corrupt databases")
struct CorruptDatabaseTests {
    /// The undamaged database, built once: 300 rows with keys under `old.key` (about 25 pages).
    final class Pristine: @unchecked Sendable {
        // Written once in init, only read afterwards.
        let folder: TemporaryFolder
        let bytes: Data

        init() throws {
            folder = try TemporaryFolder()
            let db = folder.path("pristine.db")
            for name in ["old.key", "new.key"] { #expect(try toolcfg(["keygen", "--out", folder.path(name)]).status == 0) }
            #expect(try toolcfg(["migrate", "up", "--db", db]).status == 0)
            let csv = "user_id,tool_id,enabled,api_key\n" + (0..<300).map { "user-\($0),tool-\($0 % 7),\($0 % 2),sk-\($0)-key\n" }.joined()
            try Data(csv.utf8).write(to: URL(fileURLWithPath: folder.path("in.csv")))
            let imported = try toolcfg(["import", "--db", db, "--in", folder.path("in.csv"), "--master-key-file", folder.path("old.key")])
            #expect(imported.status == 0, "\(imported.stderr)")
            // One file, no WAL beside it: what a copy of an application's database at rest is.
            try SQLiteConnection(path: db).execute("PRAGMA journal_mode = DELETE")
            bytes = try Data(contentsOf: URL(fileURLWithPath: db))
        }

        static let shared = Result { try Pristine() }
    }

    /// One damage: what it does to the bytes, described for the failure message.
    struct Damage: CustomTestStringConvertible, Sendable {
        var kind: String
        var seed: UInt64
        var testDescription: String { "\(kind) #\(seed)" }

        /// 40 truncations, 150 runs of 1 to 20 flipped bytes, 10 flipped ciphertext bytes; every
        /// fifth under a sanitizer (the same code paths, several times slower each).
        static let all: [Damage] =
            ((0..<40).map { Damage(kind: "truncated", seed: $0) }
            + (0..<150).map { Damage(kind: "flipped bytes", seed: $0) }
            + (0..<10).map { Damage(kind: "flipped ciphertext byte", seed: $0) })
            .enumerated().filter { Sanitizer.running == nil || $0.offset % 5 == 0 }.map(\.element)

        func apply(to pristine: Data, at path: String) throws {
            // The stress test's seeded generator: every run damages the same bytes.
            var random = SplitMix64(seed: seed &* 0x9E37_79B9 &+ UInt64(kind.count))
            var bytes = pristine
            switch kind {
            case "truncated":
                // Page boundaries (a lost tail of pages) and anywhere.
                let page = 4096, pages = bytes.count / page
                let cut = seed % 2 == 0 ? page * Int(random.next() % UInt64(pages)) : Int(random.next() % UInt64(bytes.count))
                bytes = bytes.prefix(cut)
            case "flipped bytes":
                // Past the 100-byte header, whose damage the notSQLite test covers.
                for _ in 0..<(1 + Int(random.next() % 20)) {
                    let at = 100 + Int(random.next() % UInt64(bytes.count - 100))
                    bytes[at] ^= UInt8(1 + random.next() % 255)
                }
            default:
                try bytes.write(to: URL(fileURLWithPath: path))
                let connection = try SQLiteConnection(path: path)
                let id = Int64(1 + random.next() % 300)
                let text = try #require(
                    try connection.queryText("SELECT encrypted_api_key FROM user_tool_configs WHERE id = ?1", [.integer(id)]))
                var sealed = try #require(Data(base64Encoded: text))
                sealed[Int(random.next() % UInt64(sealed.count))] ^= 0x01
                try connection.prepare("UPDATE user_tool_configs SET encrypted_api_key = ?1 WHERE id = ?2")
                    .run([.text(sealed.base64EncodedString()), .integer(id)])
                try connection.execute("PRAGMA journal_mode = DELETE")
                return
            }
            try bytes.write(to: URL(fileURLWithPath: path))
        }
    }

    @Test("every command on a damaged database ends 0, 65 or 74, writes nothing when it fails, and never crashes", arguments: Damage.all)
    func damaged(_ damage: Damage) throws {
        let pristine = try Pristine.shared.get()
        let folder = try TemporaryFolder()
        let db = folder.path("app.db")
        try damage.apply(to: pristine.bytes, at: db)
        let damaged = try Data(contentsOf: URL(fileURLWithPath: db))
        let keys = ["--master-key-file", pristine.folder.path("old.key")]
        let commands: [(name: String, arguments: [String], output: String?)] = [
            ("verify-keys", ["verify-keys", "--db", db] + keys, nil),
            ("export", ["export", "--db", db, "--out", folder.path("out.json")], folder.path("out.json")),
            (
                "rotate",
                ["rotate", "--db", db, "--new-master-key-file", pristine.folder.path("new.key"), "--backup", folder.path("backup.db")]
                    + keys,
                folder.path("backup.db")
            )
        ]
        for command in commands {
            let result = try toolcfg(command.arguments)
            #expect(
                [0, 65, 74].contains(result.status), "\(damage.testDescription) \(command.name): exit \(result.status) \(result.stderr)")
            if result.status != 0 {
                #expect(result.stderr.contains("toolcfg: error: "), "\(command.name): \(result.stderr)")
                #expect(
                    try Data(contentsOf: URL(fileURLWithPath: db)) == damaged,
                    "\(damage.testDescription) \(command.name) failed and changed the file")
                if let output = command.output {
                    #expect(!FileManager.default.fileExists(atPath: output), "\(damage.testDescription) \(command.name) left \(output)")
                }
            } else if command.name != "rotate" {
                #expect(
                    try Data(contentsOf: URL(fileURLWithPath: db)) == damaged, "\(damage.testDescription) \(command.name) wrote to the file"
                )
            }
        }
        if damage.kind == "flipped ciphertext byte" {
            // That one value opens under no key: verify-keys and rotate name its row, export carries it as stored.
            let verify = try toolcfg(["verify-keys", "--db", db] + keys)
            #expect(verify.status == 65 && verify.stderr.contains("user_tool_configs row id"), "\(verify.stderr)")
        }
    }
}
