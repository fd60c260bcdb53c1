import ArgumentParser
import Foundation
import ToolConfigKit

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a new master key (32 random bytes as base64, or a text for BODHI_ENCRYPTION_KEY).",
        usage: "toolcfg keygen [--out <FILE>] [--form base64|text] [<options>]",
        discussion: help(
            """
            Writes the key to --out (created 0600, never over an existing file unless --force) or \
            to standard output. --form base64 (the default) is the key itself, as key files and \
            the keyring hold it; --form text is a random text (43 characters, URL-safe base64 of \
            32 random bytes) for the application's BODHI_ENCRYPTION_KEY, whose SHA-256 is the key. \
            The fingerprint printed is of the key, the same in every form.
            """,
            examples: [
                "toolcfg keygen --out /etc/app/master.key",
                "toolcfg keygen --form text --out bodhi-key.txt",
                "toolcfg keygen > new.key"
            ])
    )

    @Option(name: .long, help: ArgumentHelp("File to create with mode 0600.", valueName: "FILE"))
    var out: String?

    @Flag(name: .long, help: "Replace an existing --out file (atomically).")
    var force = false

    @Option(name: .long, help: "base64 (the key) or text (for BODHI_ENCRYPTION_KEY; the key is its SHA-256).")
    var form: KeyForm = .base64

    enum KeyForm: String, ExpressibleByArgument, CaseIterable, Encodable {
        case base64, text
    }

    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var form: KeyForm
        var file: String?
        var masterKeyFingerprint: String
        /// Only when the key itself is the output (no --out).
        var masterKey: String?
    }

    func run() throws {
        let console = output.console
        let (text, key): (String, MasterKey)
        switch form {
        case .base64:
            key = MasterKey.generate()
            text = key.base64Text
        case .text:
            text = ApplicationKeyText.generate()
            key = try ApplicationKeyText.masterKey(text: text, source: .generated)
        }
        let what = form == .text ? "key text (for BODHI_ENCRYPTION_KEY)" : "master key"
        if let out, out != "-" {
            try PrivateFile.write(Data((text + "\n").utf8), to: out, overwrite: force)
            if output.json {
                try console.report(Report(form: form, file: out, masterKeyFingerprint: key.fingerprint))
            } else {
                console.note("wrote a new \(what) to \(out) (mode 0600, fingerprint \(key.fingerprint))")
            }
        } else if output.json {
            try console.report(Report(form: form, masterKeyFingerprint: key.fingerprint, masterKey: text))
        } else {
            Console.out(text)
            console.note("fingerprint \(key.fingerprint)" + (form == .text ? " (of the key this text yields)" : ""))
        }
    }
}
