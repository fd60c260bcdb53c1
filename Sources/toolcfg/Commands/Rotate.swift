import ArgumentParser
import Foundation
import ToolConfigKit

struct Rotate: InterruptibleCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-encrypt every secret the application keeps under a new master key, in one transaction.",
        discussion: help(
            """
            Every column group of every table is rotated: the application's known groups \
            (api_model_aliases, tenants, mcp_oauth_tokens, ...), any encrypted_X column with its \
            salt and nonce by the naming rule, and groups given with --secret-columns. A column \
            that looks like a secret and that none accounts for stops the run before anything \
            changes (exit 65). Each value keeps its scheme (v1, or v2 with its "v2:" prefix) \
            unless --scheme asks for one; --scheme v2 with the same key as old and new upgrades \
            legacy values in place. The keys are derived and encrypted from a read snapshot while \
            the application keeps writing; the write lock is held only to write them (with a \
            compare-and-swap per row) and to redo the rows the application changed meanwhile. A \
            value already under the new key counts as rotated (a second run changes nothing); a \
            value under neither key, or a group half NULL, fails the run and nothing is written. \
            The commit is made with synchronous=FULL and the rotated values are read back before \
            success is reported. Keys come in every form (see toolcfg --help). A new key bound for \
            the keyring (--new-master-key-keyring) or made by the run (--generate-new-key) is kept \
            before the commit (keyring entry secret_key.next, or --new-master-key-out) and switched \
            into the application's entry after it, the old one kept as secret_key.previous until \
            forget-old-key; a rerun finishes an interrupted switch. The report ends with the next \
            steps (next_steps in --json, kept with -q). --backup-dir DIR names each backup for the \
            database, the time and the old key, never over another file, so the same command can \
            run from cron; \
            --keep-backups N then removes the database's older backups there. SIGINT or SIGTERM \
            before the commit rolls back, removes the backup it started and exits 130 or 143; \
            after the commit the rotation finishes (exit 0).
            """,
            examples: [
                "toolcfg rotate --db app.db --master-key-file old.key \\\n      --new-master-key-file new.key --backup before.db",
                "toolcfg rotate --db app.db --master-key-keyring --generate-new-key",
                "toolcfg rotate --db app.db --master-key-env BODHI_ENCRYPTION_KEY \\\n      --new-master-key-text-file new-key.txt",
                "toolcfg rotate --db app.db --master-key-file old.key \\\n      --new-master-key-file new.key \\\n      --backup-dir "
                    + "/var/backups/toolcfg --keep-backups 6",
                "toolcfg rotate --db app.db --dry-run --json   # keys from the environment",
                "toolcfg rotate --db app.db --master-key-file k --new-master-key-file k \\\n      --scheme v2   # upgrade to v2 in place",
                "toolcfg rotate --db app.db --secret-columns \\\n      tokens:encrypted_token,token_salt,token_nonce",
                "toolcfg rotate --db postgresql://app@db/app --make-room \\\n      # PostgreSQL beside a live application"
            ])
    )

    @OptionGroup var database: DatabaseOptions
    @Flag(name: .long, help: "Decrypt everything and report; write nothing.") var dryRun = false
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write a copy (0600) of the secrets' tables as the rotation read them: an SQLite database, "
                + "or on PostgreSQL a script that psql restores.",
            valueName: "PATH"))
    var backup: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Instead of --backup: write the copy into DIR (created 0700) as <database>-<UTC time>-<old key fingerprint>.db (.sql on "
                + "PostgreSQL), never over a file.",
            valueName: "DIR"))
    var backupDir: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "With --backup-dir: after a successful rotation keep the newest N backups of this database there, removing older ones.",
            valueName: "N"))
    var keepBackups: Int?
    @Flag(
        name: .long,
        help: ArgumentHelp(
            "PostgreSQL: first give every keyed row room on its page (fillfactor 50, rows moved in short transactions, VACUUM), "
                + "so the write phase rewrites rows in place: several times shorter on a table filled by inserts. "
                + "Changes the tables' storage, never their data.")
    )
    var makeRoom = false
    @Option(name: .long, help: "keep (each value's own), v1 (up to v0.0.58) or v2 (v0.0.59 on): the scheme the values are written in.")
    var scheme: SchemeChoice = .keep
    @OptionGroup var secretColumns: SecretColumnsOption
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also rotate the secrets file of releases up to v0.0.45 ($BODHI_HOME/secrets.yaml), in step with the database.",
            valueName: "PATH"))
    var secretsFile: String?
    @OptionGroup var jobs: JobsOption
    @OptionGroup var masterKey: MasterKeyOption
    @OptionGroup var newKey: NewKeyOption
    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Make the new key in this run: kept in the keyring (with --master-key-keyring) or in --new-master-key-out "
                + "before the database changes.")
    )
    var generateNewKey = false
    @Option(
        name: .long,
        help: ArgumentHelp("With --generate-new-key: the file (created 0600, never over one) for the new key.", valueName: "FILE"))
    var newMasterKeyOut: String?
    @OptionGroup var temporaryFolder: TemporaryFolderOption
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try refuseTwoFromStandardInput(
            masterKey.masterKeyFile, masterKey.masterKeyTextFile, newKey.newMasterKeyFile, newKey.newMasterKeyTextFile)
        try asValidation { try KeyRotator.Options.requireOneBackup(path: backup, directory: backupDir, keep: keepBackups) }
    }

    func run() throws {
        let console = output.console
        masterKey.warnAboutModes(console)
        newKey.warnAboutModes(console)
        let keys = try RotationKeys.prepare(
            old: masterKey.forms, new: newKey.forms, generate: generateNewKey, newKeyOut: newMasterKeyOut, dryRun: dryRun)
        var options = KeyRotator.Options(
            oldKey: keys.oldKey, newKey: keys.newKey, dryRun: dryRun, backupPath: backup, jobs: jobs.count,
            makeRoom: makeRoom, scheme: scheme.scheme, columns: try secretColumns.map(), secretsFile: secretsFile)
        options.beforeWriting = keys.stage
        (options.backupDirectory, options.keepBackups, options.interruption) = (backupDir, keepBackups, processInterruption)
        try options.requireSomethingToDo()  // refused before the database is even opened
        try temporaryFolder.apply(database)
        let connection = try database.openEitherEngine(dryRun ? .readOnly : .readWrite)
        var report = try console.withProgress { try KeyRotator(database: connection, options: options).run(progress: $0) }
        try keys.finishSwitch()
        report.nextSteps = keys.nextSteps(report)
        for warning in report.warnings { console.warn(warning) }
        if let signal = processInterruption.signal { console.note(Console.signalAfterCommit(signal)) }
        if output.json { return try console.report(report) }
        RotationOutput.describe(report, console: console)
    }
}
