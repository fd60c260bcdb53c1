/// Checks a snapshot file on its own, with no database: that it is a toolcfg snapshot (header),
/// that every record is valid by the import's rules, that every sealed key opens with the
/// passphrase (the seal binds user_id and tool_id, so a record moved or altered there is named),
/// and that the trailer's row count and digest match the records. What an import of the file
/// would refuse, this refuses, before anyone relies on the backup.
///
/// The digest covers all records at once: a change to a field no seal covers (enabled, the
/// timestamps, a stored triple) is detected, but the digest cannot say which record holds it.
public struct BackupChecker {
    public struct Options: Sendable {
        public var input: String
        public var format: SnapshotFormat
        /// Opens the sealed keys of a sealed snapshot; without it a sealed snapshot is refused.
        public var passphrase: SecureBytes?

        public init(input: String, format: SnapshotFormat, passphrase: SecureBytes? = nil) {
            self.input = input
            self.format = format
            self.passphrase = passphrase
        }
    }

    public struct Report: Sendable, Codable {
        public var file: String
        public var format: SnapshotFormat
        public var keys: KeyMode
        public var records: Int
        /// Records holding a key (plaintext, encrypted or sealed).
        public var keyedRecords: Int
        /// Sealed keys opened with the passphrase (every one, or the check fails).
        public var sealedKeysOpened: Int
        /// The trailer's row count and digest, matched.
        public var rowCount: Int
        public var digest: String
    }

    let options: Options

    public init(options: Options) {
        self.options = options
    }

    public func run(progress: ProgressHandler = { _ in }) throws -> Report {
        let reader = try SnapshotReaders.open(path: options.input, format: options.format)
        let file = reader.fileName
        guard let header = reader.header else {
            throw SnapshotError(
                SnapshotLocation(file: file, line: 1),
                "not a toolcfg snapshot: no header and trailer, so nothing proves it complete or unaltered "
                    + "(back up with toolcfg export to a .json or .jsonl file)")
        }
        var sealer: SnapshotSealer?
        if let sealing = header.sealing {
            guard let passphrase = options.passphrase else {
                throw SecretError.missing(
                    secret: "passphrase (the snapshot is sealed)", flag: SecretKind.passphrase.flag,
                    environmentVariable: SecretKind.passphrase.environmentVariable)
            }
            sealer = try Importer.openSealing(sealing, passphrase: passphrase, file: file)
        }
        let decoder = RecordDecoder(format: options.format, declaredKeys: header.keys)
        let digest = SnapshotDigest()
        var keyed = 0, opened = 0
        var last: SnapshotLocation?
        let size = reader.source.size
        progress(ProgressEvent(.reading, total: size, unit: .bytes))
        while let raw = try reader.next() {
            let record = try decoder.decode(raw)
            digest.add(record)
            last = raw.location
            switch record.key {
            case .none: break
            case .plaintext, .encrypted: keyed += 1
            case .sealed(let sealed):
                keyed += 1
                do {
                    _ = try sealer?.open(sealed, userID: record.userID, toolID: record.toolID)
                    opened += 1
                } catch {
                    throw SnapshotError(
                        raw.location.with(field: SnapshotField.sealedAPIKey),
                        "does not open with the passphrase: this record's key, user_id or tool_id was altered")
                }
            }
            if digest.count % 4096 == 0 { progress(ProgressEvent(.reading, done: reader.source.bytesConsumed, total: size, unit: .bytes)) }
        }
        let actual = SnapshotTrailer(rowCount: digest.count, digest: digest.finish())
        do {
            _ = try SnapshotTrailer.check(reader.trailer, header: header, actual: actual, file: file)
        } catch {
            // Where the records end tells where a truncation cut; an altered record can only be
            // told from the digest as a whole.
            let end = last.map { " (the records end at line \($0.line ?? 0), record \($0.record ?? 0))" } ?? " (the file holds no record)"
            let which = " (the digest covers every record at once and cannot say which; only a sealed key names its record)"
            throw SnapshotError(error.location, error.message + (error.location.field == "digest" ? which : end))
        }
        return Report(
            file: options.input, format: options.format, keys: header.keys, records: actual.rowCount, keyedRecords: keyed,
            sealedKeysOpened: opened, rowCount: actual.rowCount, digest: actual.digest)
    }
}
