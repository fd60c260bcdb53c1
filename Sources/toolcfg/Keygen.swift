import ArgumentParser
import Foundation
import ToolConfigKit

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a new master key (32 random bytes as base64).",
        discussion: help("""
            Writes the key to --out (created 0600, never over an existing file unless --force) or \
            to standard output. The fingerprint printed identifies the key in every report without \
            revealing it.
            """, examples: [
                "toolcfg keygen --out /etc/app/master.key",
                "toolcfg keygen > new.key",
            ])
    )

    @Option(name: .long, help: ArgumentHelp("File to create with mode 0600.", valueName: "FILE"))
    var out: String?

    @Flag(name: .long, help: "Replace an existing --out file (atomically).")
    var force = false

    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var file: String?
        var masterKeyFingerprint: String
        /// Only when the key itself is the output (no --out).
        var masterKey: String?
    }

    func run() throws {
        let console = output.console
        let key = MasterKey.generate()
        if let out, out != "-" {
            try PrivateFile.write(Data((key.base64Text + "\n").utf8), to: out, overwrite: force)
            if output.json {
                try console.report(Report(file: out, masterKeyFingerprint: key.fingerprint))
            } else {
                console.note("wrote a new master key to \(out) (mode 0600, fingerprint \(key.fingerprint))")
            }
        } else if output.json {
            try console.report(Report(masterKeyFingerprint: key.fingerprint, masterKey: key.base64Text))
        } else {
            Console.out(key.base64Text)
            console.note("fingerprint \(key.fingerprint)")
        }
    }
}
