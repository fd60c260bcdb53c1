import ToolConfigKit

/// import's summary as text.
enum ImportOutput {
    static func describe(_ report: Importer.Report, console: Console) {
        let prefix = report.dryRun ? "dry run, nothing written: would have " : ""
        console.note(
            "\(prefix)read \(count(report.records, "record")): \(report.inserted) inserted, \(report.updated) updated, "
                + "\(report.unchanged) unchanged, \(report.skipped) skipped"
                + (report.duplicates > 0 ? ", \(report.duplicates) duplicate(s)" : "")
                + (report.integrityChecked ? "; row count and digest verified" : "")
                + (report.masterKeyFingerprint.map { "; master key \($0)" } ?? ""))
        if report.changedDuringImport > 0 {
            console.note(
                "\(report.changedDuringImport) pair(s) written by the application while the file was read were decided again under the lock"
            )
        }
        if !report.dryRun { console.note(Console.writeLock(held: report.writeLockSeconds, of: report.elapsedSeconds)) }
    }
}
