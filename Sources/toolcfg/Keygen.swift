import ArgumentParser
import Foundation
import ToolConfigKit

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a new master key (32 random bytes as base64).",
        discussion: "Writes the key to --out (created 0600, never over an existing file unless --force) or to standard output. The fingerprint printed identifies the key in every report without revealing it."
    )

    @Option(name: .long, help: ArgumentHelp("File to create with mode 0600.", valueName: "FILE"))
    var out: String?

    @Flag(name: .long, help: "Replace an existing --out file (atomically).")
    var force = false

    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var file: String?
        var fingerprint: String
        var masterKey: String?
    }

    func run() throws {
        let key = MasterKey.generate()
        if let out, out != "-" {
            try reporting { try PrivateFile.write(Data((key.base64Text + "\n").utf8), to: out, overwrite: force) }
            if output.json {
                try Console.json(Report(file: out, fingerprint: key.fingerprint))
            } else {
                Console.note("wrote a new master key to \(out) (mode 0600, fingerprint \(key.fingerprint))")
            }
        } else if output.json {
            try Console.json(Report(fingerprint: key.fingerprint, masterKey: key.base64Text))
        } else {
            Console.out(key.base64Text)
            Console.note("fingerprint \(key.fingerprint)")
        }
    }
}
