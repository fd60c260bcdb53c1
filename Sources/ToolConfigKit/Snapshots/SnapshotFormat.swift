/// The snapshot file formats of the command-line contract.
public enum SnapshotFormat: String, Sendable, Codable, CaseIterable {
    case csv, json, jsonl

    /// From a path's extension; nil for standard input or an unknown extension.
    public init?(path: String) {
        let lower = path.lowercased()
        if lower.hasSuffix(".csv") {
            self = .csv
        } else if lower.hasSuffix(".jsonl") || lower.hasSuffix(".ndjson") {
            self = .jsonl
        } else if lower.hasSuffix(".json") {
            self = .json
        } else {
            return nil
        }
    }
}

/// How keys travel in a snapshot.
public enum KeyMode: String, Sendable, Codable, CaseIterable {
    /// The stored triple as it is; no master key needed.
    case encrypted
    /// Decrypted keys; only when asked for explicitly.
    case plaintext
    /// Each key sealed under a passphrase-derived key (Argon2id), bound to its user and tool.
    case sealed
    /// No secret material at all.
    case omit

    public var holdsSecrets: Bool { self != .omit }
}

/// The header of a JSON or JSON Lines snapshot.
public struct SnapshotHeader: Sendable, Equatable {
    public static let formatName = "toolcfg-snapshot"
    public static let formatVersion = 1

    public var keys: KeyMode
    public var sealing: SealingParameters?
}

/// The end of a JSON or JSON Lines snapshot: what lets an import detect truncation or alteration.
public struct SnapshotTrailer: Sendable, Equatable {
    public var rowCount: Int
    public var digest: String
}
