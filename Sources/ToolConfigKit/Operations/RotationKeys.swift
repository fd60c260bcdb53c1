import Foundation

/// rotate's two keys, and where the new one goes, in a crash-safe order: a new key that only the
/// rotation holds (generated, or bound for the keyring) is stored where it survives a crash
/// before the database commit (the keyring's `secret_key.next` entry, or a new 0600 file), and
/// only after the commit and the read-back is it moved into the entry the application reads, the
/// old one kept as `secret_key.previous` until `forget-old-key`.
///
/// A rerun finishes what a crash left: a `.next` entry is the new key (values already under it
/// count as rotated, so the rerun only completes the switch); one the application entry already
/// holds means only `.next` was left to remove. Without `.next` and without `--generate-new-key`,
/// a keyring-to-keyring run is the catch-up: from `.previous` to the application's entry.
public struct RotationKeys: Sendable {
    public enum Destination: Sendable, Equatable {
        /// The new key came in a form the operator switches the application to.
        case given
        /// A generated key written to this file (0600) before the commit.
        case file(String)
        /// Switched into this service's keyring entry after the commit.
        case keyring(service: String)
        /// `.previous` to the application's entry: a rotation after a switch, nothing to switch.
        case catchUp(service: String)
    }

    public let oldKey: MasterKey
    public let newKey: MasterKey
    public let destination: Destination
    /// Whether the new key exists only in this run so far (generated now).
    public let generated: Bool
    let dryRun: Bool

    /// Resolves both keys. Refusals (exit 64) before anything is read from the database.
    public static func prepare(
        old: MasterKeyForms, new: MasterKeyForms, generate: Bool, newKeyOut: String?, dryRun: Bool,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> RotationKeys {
        try old.requireAtMostOne(.masterKey)
        try new.requireAtMostOne(.newMasterKey)
        if newKeyOut != nil && !generate {
            throw UsageError("--new-master-key-out names where a generated key goes: give it with --generate-new-key")
        }
        if generate, let other = new.given(.newMasterKey).first(where: { $0 != "--new-master-key-keyring" }) {
            throw UsageError("--generate-new-key makes the new key: do not give \(other) too")
        }
        if let newKeyOut, new.keyringService != nil {
            throw UsageError(
                "the generated key goes either to --new-master-key-out \(newKeyOut) or to the keyring (--new-master-key-keyring), not both")
        }
        if generate && newKeyOut == nil && new.keyringService == nil && old.keyringService == nil {
            throw UsageError(
                "--generate-new-key needs somewhere to keep the new key before the database changes: --new-master-key-out FILE, "
                    + "or the keyring (--master-key-keyring or --new-master-key-keyring)")
        }
        if let newKeyOut {
            do {
                try PrivateFile.requireAbsent(newKeyOut)
            } catch {
                throw PrivateFile.Failure(
                    path: newKeyOut,
                    reason: "\(error.reason); if an interrupted rotation wrote it, finish that rotation "
                        + "with --new-master-key-file \(newKeyOut) instead of --generate-new-key", exitStatus: .ioError)
            }
            let oldKey = try SecretInput.requireMasterKey(.masterKey, forms: old, environment: environment)
            return RotationKeys(oldKey: oldKey, newKey: .generate(), destination: .file(newKeyOut), generated: true, dryRun: dryRun)
        }
        let service = new.keyringService ?? (generate ? old.keyringService : nil)
        guard let service else {
            let oldKey = try SecretInput.requireMasterKey(.masterKey, forms: old, environment: environment)
            let newKey = try SecretInput.requireMasterKey(.newMasterKey, forms: new, environment: environment)
            return RotationKeys(oldKey: oldKey, newKey: newKey, destination: .given, generated: false, dryRun: dryRun)
        }
        let application = KeyringEntry.application(service: service), next = KeyringEntry.next(service: service)
        let previous = KeyringEntry.previous(service: service)
        let oldInSameEntry = old.keyringService == service
        if let staged = try next.masterKey() {
            // A run that stopped after staging: go on with its key. The application's entry may
            // already hold it (stopped before removing .next): then the old key is .previous.
            let oldKey: MasterKey
            if !oldInSameEntry {
                oldKey = try SecretInput.requireMasterKey(.masterKey, forms: old, environment: environment)
            } else if let current = try application.masterKey(), current.material != staged.material {
                oldKey = current
            } else {
                oldKey = try previous.requireMasterKey()
            }
            return RotationKeys(oldKey: oldKey, newKey: staged, destination: .keyring(service: service), generated: false, dryRun: dryRun)
        }
        if generate {
            let oldKey = try SecretInput.requireMasterKey(.masterKey, forms: old, environment: environment)
            // The switch will keep the entry's key as .previous: one an earlier rotation kept
            // there and nobody forgot would be lost, and the application may still write under
            // it until it restarts.
            if let kept = try previous.masterKey(), try application.masterKey()?.material != kept.material {
                throw UsageError(
                    "\(previous.description) still holds the key \(kept.fingerprint) of an earlier rotation: finish that one "
                        + "first (after the application restarted, its catch-up: toolcfg rotate --master-key-keyring '\(service)' "
                        + "--new-master-key-keyring '\(service)'; then toolcfg forget-old-key --keyring '\(service)' --db DATABASE); "
                        + "nothing was changed"
                )
            }
            return RotationKeys(
                oldKey: oldKey, newKey: .generate(), destination: .keyring(service: service), generated: true, dryRun: dryRun)
        }
        // Nothing staged, nothing to generate: the application's entry is the new key, and from
        // that same entry the old one is .previous (the catch-up after a switch).
        let newKey = try application.requireMasterKey()
        let oldKey: MasterKey
        if !oldInSameEntry {
            oldKey = try SecretInput.requireMasterKey(.masterKey, forms: old, environment: environment)
        } else if let kept = try previous.masterKey() {
            oldKey = kept
        } else {
            throw UsageError(
                "the current and the new key both from \(application.description): no new key is staged (\(next.description)) "
                    + "and no previous key is kept (\(previous.description)) to catch up from; give --generate-new-key to rotate to a new "
                    + "key"
            )
        }
        return RotationKeys(
            oldKey: oldKey, newKey: newKey, destination: oldInSameEntry ? .catchUp(service: service) : .keyring(service: service),
            generated: false, dryRun: dryRun)
    }

    /// Before the rotation touches the database: the new key where it survives a crash.
    public func stage() throws {
        guard !dryRun, generated else { return }
        switch destination {
        case .file(let path):
            try PrivateFile.write(Data((newKey.base64Text + "\n").utf8), to: path)
        case .keyring(let service):
            // Never over a key another rotation staged since this one began: it may be the
            // only copy of the key a committed database is under.
            let next = KeyringEntry.next(service: service)
            if let staged = try next.masterKey(), staged.material != newKey.material {
                throw UsageError(
                    "\(next.description) holds another new key, \(staged.fingerprint), staged by a rotation that ran "
                        + "meanwhile: run the same command again (it goes on with that key); nothing was changed")
            }
            try next.store(newKey)
        case .given, .catchUp:
            return
        }
        CrashPoint.reach("new-key-stored")
    }

    /// After the commit and the read-back: the new key into the application's entry, whatever
    /// that entry held kept as `.previous`, then `.next` removed. Each step can be redone, so a
    /// rerun after a crash between them ends in the same state.
    public func finishSwitch() throws {
        guard !dryRun, case .keyring(let service) = destination else { return }
        do throws(SecretError) {
            try switchKeyring(service)
        } catch {
            throw UnfinishedKeySwitch(service: service, newKey: newKey.fingerprint, reason: error.description, exitStatus: error.exitStatus)
        }
    }

    private func switchKeyring(_ service: String) throws(SecretError) {
        let application = KeyringEntry.application(service: service)
        if let current = try application.masterKey(), current.material != newKey.material {
            try KeyringEntry.previous(service: service).store(current)
            CrashPoint.reach("keyring-previous-stored")
        }
        try application.store(newKey)
        CrashPoint.reach("keyring-switched")
        try KeyringEntry.next(service: service).remove()
    }

    /// What the operator does next, in the form of the keys given: switch the application to
    /// the new key, restart it, run the rotation again for what it wrote under the old key in
    /// the meantime, then let the old key go.
    public func nextSteps(_ report: KeyRotator.Report) -> [String] {
        if report.dryRun { return ["dry run: nothing was written; run the same command without --dry-run to rotate"] }
        if oldKey.material == newKey.material {
            return [
                "nothing to switch: the master key \(newKey.fingerprint) is the same; the application reads the rewritten values as they "
                    + "are"
            ]
        }
        var steps: [String] = []
        if report.applicationRelease.hasSecretsFile && report.secretsFile == nil {
            steps.append(
                "before switching: run this rotation again with --secrets-file $BODHI_HOME/secrets.yaml (the application reads it at start)"
            )
        }
        let new = newKey.fingerprint, old = oldKey.fingerprint
        switch destination {
        case .catchUp(let service):
            steps.append("nothing to switch: \(KeyringEntry.application(service: service).description) already holds the new key \(new)")
            steps.append(
                "run this again after every restart until it rotates nothing; then forget the old key: "
                    + "toolcfg forget-old-key --keyring '\(service)' --db \(report.database)")
            return steps
        case .keyring(let service):
            var done = "done by this run: \(KeyringEntry.application(service: service).description) holds the new key \(new)"
            switch oldKey.source {
            case .keyring: done += "; the old key \(old) is kept as \(KeyringEntry.previous(service: service).description)"
            case .textEnvironment, .textFile:
                done +=
                    "; remove \(Self.variable(oldKey.source)) from the application's environment: while it is set, "
                    + "the application uses it, not the keyring"
                    + Self.keepOldKey
            default: done += Self.keepOldKey
            }
            steps.append(done)
        case .file(let path):
            steps.append(
                "switch the application to the new key \(new), written to \(path): " + Self.switchAdvice(from: oldKey.source, base64: path)
                    + Self.keepOldKey)
        case .given:
            steps.append(
                "switch the application to the new key \(new): " + Self.switchAdvice(from: oldKey.source, to: newKey.source)
                    + Self.keepOldKey)
        }
        steps.append("restart the application: until it runs on the new key it cannot read the values rotated under it")
        var oldFromKeyring = false
        if case .keyring = oldKey.source { oldFromKeyring = true }
        let again: String
        switch destination {
        case .keyring(let service) where oldFromKeyring:
            again =
                "toolcfg rotate --db \(report.database) --master-key-keyring '\(service)' --new-master-key-keyring '\(service)' "
                + "(from the previous key to the current one)"
        case .keyring(let service):
            again =
                "the same rotation with --new-master-key-keyring '\(service)' and without --generate-new-key (the entry holds the new key "
                + "now)"
        case .file(let path):
            again = "the same rotation with --new-master-key-file \(path) in place of --generate-new-key"
        default:
            again =
                "the same rotation again with the same two keys (the old one from that copy if its \(oldKey.source) "
                + "holds the new one by then)"
        }
        steps.append(
            "then run \(again), to re-encrypt what the application wrote under the old key before it restarted; "
                + "values already under the new key are left alone"
        )
        if case .keyring(let service) = destination, oldFromKeyring {
            let backup = report.backupFile.map { " and you keep no backup that needs it (\($0) does)" } ?? ""
            steps.append("once that run rotates nothing\(backup): toolcfg forget-old-key --keyring '\(service)' --db \(report.database)")
        } else {
            steps.append(
                "once that run rotates nothing, discard the old key \(old) (\(oldKey.source))"
                    + (report.backupFile.map { ", unless you keep the backup \($0), which needs it" } ?? ""))
        }
        return steps
    }

    static let keepOldKey = "; keep a copy of the old key first (a 0600 file): the catch-up run below needs it"

    /// Where the new key goes, from where the old one came (which tells how the application
    /// takes its key) and the form the new one is in.
    static func switchAdvice(from old: SecretSource, to new: SecretSource) -> String {
        switch new {
        case .textEnvironment(let name):
            return "set \(variable(old)) in the application's environment to the value of \(name)"
        case .textFile(let path):
            return "set \(variable(old)) in the application's environment (its env file or Docker secret) to the text in \(path)"
        case .keyring(let description):
            return "the keyring entry \(description) holds it"
        default:
            return base64Advice(from: old, new: new.description)
        }
    }

    static func switchAdvice(from old: SecretSource, base64 path: String) -> String { base64Advice(from: old, new: "file \(path)") }

    private static func base64Advice(from old: SecretSource, new: String) -> String {
        switch old {
        case .textEnvironment, .textFile:
            "the application takes \(ApplicationKeyText.variable) as a text it hashes, so this base64 key (\(new)) cannot go there: "
                + "put it into its keyring entry, or rotate again to a text key (toolcfg keygen --form text, --new-master-key-text-file)"
        default:
            "put the base64 text from \(new) where the application keeps its key (its keyring entry, "
                + "\(KeyringEntry.application(service: KeyringEntry.defaultService).description), or where \(old) comes from)"
        }
    }

    private static func variable(_ old: SecretSource) -> String {
        if case .textEnvironment(let name) = old { return name }
        return ApplicationKeyText.variable
    }
}

/// The database is committed under the new key but the keyring switch stopped: a rerun finishes it.
public struct UnfinishedKeySwitch: ToolcfgError {
    public var service: String
    public var newKey: String
    public var reason: String
    public var exitStatus: ExitStatus

    public var description: String {
        "the database is committed under the new key \(newKey), but switching the keyring did not finish: \(reason); the new key waits in "
            + "\(KeyringEntry.next(service: service).description): run the same command again to finish the switch"
    }
}
