import ToolConfigKit

/// rotate's report as text.
enum RotationOutput {
    static func describe(_ report: KeyRotator.Report, console: Console) {
        for group in report.groups {
            let name = "\(group.table) (\(group.columns[0]))"
            if let room = group.room {
                var line = "\(group.table): \(room.rowsWithoutRoom) keyed rows without room on their page"
                if !report.dryRun {
                    line +=
                        room.fillfactor == room.fillfactorBefore
                        ? ", fillfactor \(room.fillfactor)" : ", fillfactor \(room.fillfactorBefore) -> \(room.fillfactor)"
                    line += String(
                        format: ", %d moved in %d transactions (longest %.3f s), %d left without room",
                        room.rowsMoved, room.batches, room.longestBatchSeconds, room.rowsLeftWithoutRoom)
                }
                console.note(line)
            }
            var line =
                "\(name): \(group.rows) rows, \(group.rotated) \(report.dryRun ? "to rotate" : "rotated"), \(group.alreadyRotated) "
                + "already under the new key, \(group.empty) empty"
            if group.changedDuringRotation > 0 {
                line += ", \(group.changedDuringRotation) written by the application meanwhile and redone"
            }
            if group.removedDuringRotation > 0 { line += ", \(group.removedDuringRotation) deleted meanwhile" }
            console.note(line)
        }
        let total = report.total
        console.note(
            "in all: \(count(total.groups, "column group")) of \(count(total.tables, "table")), \(total.rows) rows, \(total.rotated) "
                + "\(report.dryRun ? "to rotate" : "rotated"), "
                + "\(total.alreadyRotated) already under the new key, \(total.empty) empty"
                + (report.scheme == "keep" ? "" : "; written in scheme \(report.scheme)"))
        if let file = report.secretsFile {
            console.note(
                "secrets file \(file.file): "
                    + (file.outcome == "rotated" ? (report.dryRun ? "to rotate" : "rotated") : "already under the new key"))
        }
        console.note("application release: \(report.applicationRelease.releases) (\(report.applicationRelease.basis))")
        if let backup = report.backupFile {
            console.note(
                "backup of the state the rotation read: \(backup)" + (report.backupDirectoryCreated == true ? " (folder created)" : ""))
        }
        if let removed = report.backupsRemoved, !removed.isEmpty {
            console.note("older backups removed: " + removed.joined(separator: ", "))
        }
        if !report.dryRun {
            console.note(Console.writeLock(held: report.writeLockSeconds, of: report.elapsedSeconds))
            console.note(
                "read back after commit: \(report.verifiedAfterCommit) rotated values as written"
                    + (report.changedAfterCommit > 0 ? ", \(report.changedAfterCommit) written again by the application since" : ""))
        }
        console.note("\(report.masterKeyFingerprint) -> \(report.newMasterKeyFingerprint): \(report.nextStep)")
        console.note("next:" + (report.nextSteps ?? []).enumerated().map { "\n  \($0 + 1). \($1)" }.joined())
    }
}
