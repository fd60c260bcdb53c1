import ArgumentParser
import Foundation
import ToolConfigKit

struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The database: an SQLite file, or a postgresql:// URL without a password; or set TOOLCFG_DB.",
            valueName: "PATH|URL"))
    var db: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Seconds to wait for another writer's lock before giving up (exit 75); on PostgreSQL the lock_timeout.",
            valueName: "SECONDS"))
    var busyTimeout: Double = 10

    var timeout: Duration { .milliseconds(Int64(busyTimeout * 1000)) }

    /// --db, else TOOLCFG_DB (read here only): only the environment may carry a PostgreSQL
    /// password. Nil when neither is given.
    func givenLocation() throws -> DatabaseLocation? {
        if let db { return try DatabaseLocation(db, origin: .argument) }
        guard let fromEnvironment = ProcessInfo.processInfo.environment["TOOLCFG_DB"], !fromEnvironment.isEmpty else { return nil }
        return try DatabaseLocation(fromEnvironment, origin: .environment)
    }

    func location() throws -> DatabaseLocation {
        guard let location = try givenLocation() else { throw ValidationError("no database given: use --db PATH|URL or set TOOLCFG_DB") }
        return location
    }

    func openEitherEngine(_ mode: DatabaseOpenMode) throws -> any Database {
        try location().open(mode: mode, busyTimeout: timeout)
    }

    /// The database given, opened; nil when none is given.
    func openGiven(_ mode: DatabaseOpenMode) throws -> (any Database)? {
        try givenLocation()?.open(mode: mode, busyTimeout: timeout)
    }

    /// The database, opened to read only (see `DatabaseLocation.openReader`).
    func openReader() throws -> any DatabaseReader {
        try location().openReader(busyTimeout: timeout)
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print a machine-readable JSON report on standard output.")
    var json = false

    @Flag(name: [.short, .long], help: "Print no progress and no messages on standard error (errors still).")
    var quiet = false

    var console: Console { Console(json: json, quiet: quiet) }
}

struct MasterKeyOption: ParsableArguments {
    @Option(
        name: .long, help: ArgumentHelp("File holding the master key (base64), - for stdin; or set TOOLCFG_MASTER_KEY.", valueName: "PATH"))
    var masterKeyFile: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Environment variable holding the application's key text (as BODHI_ENCRYPTION_KEY: the key is its SHA-256).", valueName: "NAME")
    )
    var masterKeyEnv: String?
    @Option(
        name: .long,
        help: ArgumentHelp("File holding that key text, bare or as a BODHI_ENCRYPTION_KEY= line of an env file.", valueName: "PATH"))
    var masterKeyTextFile: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The application's keyring entry of SERVICE (default \"\(KeyringEntry.defaultService)\" when no value follows).",
            valueName: "SERVICE"))
    var masterKeyKeyring: String?

    var forms: MasterKeyForms {
        MasterKeyForms(
            file: masterKeyFile, environmentVariable: masterKeyEnv, textFile: masterKeyTextFile, keyringService: masterKeyKeyring)
    }

    func masterKey(_ console: Console) throws -> MasterKey? {
        warnAboutModes(console)
        return try SecretInput.masterKey(forms: forms)
    }

    func requireMasterKey(_ console: Console) throws -> MasterKey {
        warnAboutModes(console)
        return try SecretInput.requireMasterKey(forms: forms)
    }

    func warnAboutModes(_ console: Console) { forms.warnAboutModes(console) }

    func validate() throws { try refuseTwoForms(forms, .masterKey) }
}

struct NewKeyOption: ParsableArguments {
    @Option(
        name: .long, help: ArgumentHelp("File holding the new master key, - for stdin; or set TOOLCFG_NEW_MASTER_KEY.", valueName: "PATH"))
    var newMasterKeyFile: String?
    @Option(name: .long, help: ArgumentHelp("Environment variable holding the new key as the application's key text.", valueName: "NAME"))
    var newMasterKeyEnv: String?
    @Option(name: .long, help: ArgumentHelp("File holding the new key text, bare or as a BODHI_ENCRYPTION_KEY= line.", valueName: "PATH"))
    var newMasterKeyTextFile: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The keyring of SERVICE (default \"\(KeyringEntry.defaultService)\"): rotate switches its entry to the new key.",
            valueName: "SERVICE"))
    var newMasterKeyKeyring: String?

    var forms: MasterKeyForms {
        MasterKeyForms(
            file: newMasterKeyFile, environmentVariable: newMasterKeyEnv, textFile: newMasterKeyTextFile,
            keyringService: newMasterKeyKeyring)
    }

    func masterKey(_ console: Console) throws -> MasterKey? {
        warnAboutModes(console)
        return try SecretInput.masterKey(.newMasterKey, forms: forms)
    }

    func warnAboutModes(_ console: Console) { forms.warnAboutModes(console) }

    func validate() throws { try refuseTwoForms(forms, .newMasterKey) }
}

/// `--master-key-keyring`, `--new-master-key-keyring` and `--keyring` take an optional value,
/// which ArgumentParser's options cannot: with no value after them (the end, or another flag),
/// the application's own service name is filled in before parsing.
enum OptionalKeyringValue {
    static let flags: Set<String> = ["--master-key-keyring", "--new-master-key-keyring", "--keyring"]

    static func fillDefaults(_ arguments: [String]) -> [String] {
        var result: [String] = []
        for (index, argument) in arguments.enumerated() {
            result.append(argument)
            if argument == "--" {
                result += arguments[(index + 1)...]
                break
            }
            guard flags.contains(argument) else { continue }
            let next = arguments.indices.contains(index + 1) ? arguments[index + 1] : nil
            if next.map({ $0.hasPrefix("-") && $0 != "-" }) ?? true { result.append(KeyringEntry.defaultService) }
        }
        return result
    }
}

struct PassphraseOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("File holding the passphrase for sealed snapshots, - for stdin; or set TOOLCFG_PASSPHRASE.", valueName: "PATH"))
    var passphraseFile: String?

    func passphrase() throws -> SecureBytes? {
        guard let (text, source) = try SecretInput.readText(.passphrase, filePath: passphraseFile) else { return nil }
        var line = Substring(text)
        if line.last == "\n" || line.last == "\r\n" { line = line.dropLast() }
        guard !line.isEmpty else { throw SecretError.emptyPassphrase(source: source) }
        return SecureBytes(Array(line.utf8))
    }
}

struct JobsOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Threads for the key derivations (default: one per core).", valueName: "N"))
    var jobs: Int?

    var count: Int { jobs ?? ParallelMap.defaultJobs }

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }
}

/// Two forms for one key are a usage error (exit 64, with the command's usage).
func refuseTwoForms(_ forms: MasterKeyForms, _ kind: SecretKind) throws {
    try asValidation { try forms.requireAtMostOne(kind) }
}

/// A library's refusal, found in `validate()`, as ArgumentParser's: exit 64 with the command's
/// usage (anything else thrown there ends in 70).
func asValidation(_ check: () throws -> Void) throws {
    do {
        try check()
    } catch let error as any ToolcfgError {
        throw ValidationError(error.description)
    }
}

/// Only one secret (or the snapshot) can come from standard input.
func refuseTwoFromStandardInput(_ paths: String?...) throws {
    if paths.filter({ $0 == "-" }).count > 1 {
        throw ValidationError("only one of the snapshot and the secrets can come from standard input")
    }
}

/// `--temp-dir`: where SQLite writes an import's or a rotation's staging tables.
struct TemporaryFolderOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "SQLite: the folder for the staging tables (default: SQLITE_TMPDIR, else TMPDIR, else /var/tmp or /tmp).",
            valueName: "DIR"))
    var tempDir: String?

    /// Before the database is opened: SQLite reads its temporary folder once.
    func apply(_ database: DatabaseOptions) throws {
        guard let tempDir else { return }
        guard try database.location().stagesInLocalFiles else {
            throw ValidationError("--temp-dir is for SQLite: on PostgreSQL the staging tables live on the server (its temp_tablespaces)")
        }
        try TemporaryStorage.use(tempDir)
    }
}

extension MasterKeyForms {
    /// A warning for each key file or key text file that others may read.
    func warnAboutModes(_ console: Console) {
        for path in [file, textFile] { SecretInput.looseModeWarning(forKeyFile: path).map(console.warn) }
    }
}
