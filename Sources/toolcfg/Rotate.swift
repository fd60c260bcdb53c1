import ArgumentParser
import Foundation
import ToolConfigKit

struct Rotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-encrypt every stored key under a new master key, in one transaction.",
        discussion: help("""
            Every table with encrypted_api_key, salt and nonce columns is rotated. The keys are \
            derived and encrypted from a read snapshot while the application keeps writing; the \
            write lock is held only to write them (with a compare-and-swap per row) and to redo \
            the rows the application changed meanwhile. A row already under the new key counts \
            as rotated (a second run changes nothing); a row under neither key fails the run and \
            nothing is written. The commit is made with synchronous=FULL and the rotated rows are \
            read back before success is reported.
            """, examples: [
                "toolcfg rotate --db app.db --master-key-file old.key \\\n      --new-master-key-file new.key --backup before.db",
                "toolcfg rotate --db app.db --dry-run --json   # keys from the environment",
                "toolcfg rotate --db postgresql://app@db/app --make-room   # PostgreSQL beside a live application",
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Flag(name: .long, help: "Decrypt everything and report; write nothing.") var dryRun = false
    @Option(name: .long, help: ArgumentHelp("Write a copy (0600) of the keys' tables as the rotation read them: an SQLite database, or on PostgreSQL a script that psql restores.", valueName: "PATH"))
    var backup: String?
    @Flag(name: .long, help: "PostgreSQL: first give every keyed row room on its page (fillfactor 50, rows moved in short transactions, VACUUM), so the write phase rewrites rows in place: several times shorter on a table filled by inserts. Changes the tables' storage, never their data.")
    var makeRoom = false
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var newKey: NewKeyOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try refuseTwoFromStandardInput(masterKey.masterKeyFile, newKey.newMasterKeyFile)
    }

    func run() throws {
        let console = output.console
        let oldKey = try masterKey.requireMasterKey()
        let newMasterKey = try SecretInput.requireMasterKey(.newMasterKey, filePath: newKey.newMasterKeyFile)
        if oldKey.material == newMasterKey.material {  // refused before the database is even opened
            throw UsageError("the new master key is the same as the current one (fingerprint \(oldKey.fingerprint))")
        }
        let connection = try database.openEitherEngine(dryRun ? .readOnly : .readWrite)
        let options = KeyRotator.Options(oldKey: oldKey, newKey: newMasterKey, dryRun: dryRun, backupPath: backup, jobs: jobs.count,
                                          makeRoom: makeRoom)
        let report = try console.withProgress { try KeyRotator(database: connection, options: options).run(progress: $0) }
        if output.json { return try console.report(report) }
        for table in report.tables {
            if let room = table.room {
                var line = "\(table.table): \(room.rowsWithoutRoom) keyed rows without room on their page"
                if !dryRun {
                    line += room.fillfactor == room.fillfactorBefore ? ", fillfactor \(room.fillfactor)" : ", fillfactor \(room.fillfactorBefore) -> \(room.fillfactor)"
                    line += String(format: ", %d moved in %d transactions (longest %.3f s), %d left without room",
                                   room.rowsMoved, room.batches, room.longestBatchSeconds, room.rowsLeftWithoutRoom)
                }
                console.note(line)
            }
            var line = "\(table.table): \(table.rows) rows, \(table.rotated) \(dryRun ? "to rotate" : "rotated"), \(table.alreadyRotated) already under the new key, \(table.noKey) without a key"
            if table.changedDuringRotation > 0 { line += ", \(table.changedDuringRotation) written by the application meanwhile and redone" }
            if table.removedDuringRotation > 0 { line += ", \(table.removedDuringRotation) deleted meanwhile" }
            console.note(line)
        }
        if let backup = report.backupFile { console.note("backup of the state the rotation read: \(backup)") }
        if !dryRun {
            console.note(String(format: "write lock held %.3f s of %.1f s", report.writeLockSeconds, report.elapsedSeconds))
            console.note("read back after commit: \(report.verifiedAfterCommit) rotated rows as written"
                + (report.changedAfterCommit > 0 ? ", \(report.changedAfterCommit) written again by the application since" : ""))
        }
        console.note("\(report.masterKeyFingerprint) -> \(report.newMasterKeyFingerprint): \(report.nextStep)")
    }
}
