import ArgumentParser
import Foundation
import ToolConfigKit

struct CheckBackup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-backup",
        abstract: "Check a snapshot file on its own: header, records, sealed keys, trailer and digest. No database needed.",
        usage: "toolcfg check-backup FILE [--format <format>] [<options>]",
        discussion: help(
            """
            Reads the whole file as an import would and proves it whole: a toolcfg header, every \
            record valid (the first bad one named by line and field), every sealed key opening \
            with the passphrase (a key, user_id or tool_id altered in a record is named), and a \
            trailer whose row count and digest match the records. A truncated file says where its \
            records end. Files without header and trailer (CSV, bare JSON) are refused: nothing in \
            them proves them complete. Exit 0 when the backup is sound, 65 when it is not.
            """,
            examples: [
                "toolcfg check-backup backup.json",
                "toolcfg check-backup backup.jsonl --passphrase-file passphrase --json",
                "cat backup.jsonl | toolcfg check-backup - --format jsonl"
            ])
    )

    @Argument(help: ArgumentHelp("The snapshot file, or - for standard input.", valueName: "FILE")) var file: String
    @Option(name: .long, help: "json or jsonl (default: from the file's extension).") var format: SnapshotFormat?
    @OptionGroup var passphrase: PassphraseOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try refuseTwoFromStandardInput(file, passphrase.passphraseFile)
    }

    func run() throws {
        let console = output.console
        let options = BackupChecker.Options(
            input: file, format: try snapshotFormat(format, path: file), passphrase: try passphrase.passphrase())
        let report = try console.withProgress { try BackupChecker(options: options).run(progress: $0) }
        if output.json { return try console.report(report) }
        let sealed = report.keys == .sealed ? ", \(report.sealedKeysOpened) sealed keys open with the passphrase" : ""
        console.note(
            "\(report.file): a sound toolcfg snapshot: \(count(report.records, "record")) (\(report.keyedRecords) with a key, "
                + "\(report.keys.rawValue))\(sealed); row count and digest match (\(report.digest))")
    }
}
