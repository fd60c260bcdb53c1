/// The errors of the operations (export, import, rotate), by table and row, never with a value.

/// A stored key that failed to decrypt, named by table and row id, never by value.
public struct RowError: ToolcfgError {
    public var table: String
    public var rowID: Int64
    public var cause: SecretError

    public var exitStatus: ExitStatus { .dataError }
    public var description: String { "\(table) row id \(rowID): \(cause.description)" }
    public var errorContext: ErrorContext { ErrorContext(table: table, rowID: rowID) }
}

public struct VerificationError: ToolcfgError {
    public var path: String
    public var message: String
    public var exitStatus: ExitStatus { .dataError }
    public var description: String { "verification of \(path) failed: \(message)" }
    public var errorContext: ErrorContext { ErrorContext(file: path) }
}

public struct UsageError: ToolcfgError {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var exitStatus: ExitStatus { .usage }
    public var description: String { message }
}

public struct RotationError: ToolcfgError {
    public var table: String
    public var row: String
    /// The row's rowid (its id in user_tool_configs); nil when the error is about many rows.
    public var rowID: Int64? = nil
    /// The ciphertext column of the group at fault.
    public var column: String? = nil
    public var reason: String
    /// False only for a failure found after the commit.
    public var rolledBack = true

    /// A row's value in one column group, the reason in the group's column names.
    init(group: SecretColumnGroup, row: SecretRow, reason: String, rolledBack: Bool = true) {
        let (column, reason) = group.naming(reason)
        self.init(table: group.table, row: row.label, rowID: row.rowID, column: column, reason: reason, rolledBack: rolledBack)
    }

    init(table: String, row: String, rowID: Int64? = nil, column: String? = nil, reason: String, rolledBack: Bool = true) {
        self.table = table
        self.row = row
        self.rowID = rowID
        self.column = column
        self.reason = reason
        self.rolledBack = rolledBack
    }

    public var exitStatus: ExitStatus { .dataError }
    public var description: String {
        "\(table) \(row)\(column.map { ", \($0)" } ?? ""): \(reason)\(rolledBack ? "; nothing was changed" : "")"
    }
    public var errorContext: ErrorContext { ErrorContext(field: column, table: table, rowID: rowID) }
}

/// Reading a committed rotation back failed for a reason outside its rows (the server stopped,
/// the connection was cut): the rotation stands, but this run could not check it.
public struct ReadBackError: ToolcfgError {
    public var database: String
    public var cause: any ToolcfgError

    // Checking again later is all that is left to do.
    public var exitStatus: ExitStatus { .temporaryFailure }
    public var description: String {
        let reason = (cause as? any EngineError)?.reason ?? cause.description
        return "database \(database): the rotation is committed, every secret it read is under the new key, but reading it back "
            + "failed: \(reason); check it with verify-keys under the new key, or run the same command again once the server "
            + "accepts connections (it finds everything rotated and reads it back)"
    }
    public var errorContext: ErrorContext { ErrorContext(database: database) }
}

/// The column groups that hold secrets changed while a rotation ran (a migration added or
/// dropped one): what it read no longer covers every secret. Nothing was written; a new run will.
public struct TablesChangedDuringRotation: ToolcfgError {
    public var database: String
    public var before: [String]
    public var now: [String]

    public var exitStatus: ExitStatus { .temporaryFailure }
    public var description: String {
        "database \(database): the column groups holding secrets changed while the rotation ran (\(before.joined(separator: ", ")) -> "
            + "\(now.joined(separator: ", "))); nothing was written; run rotate again"
    }
    public var errorContext: ErrorContext { ErrorContext(database: database) }
}

/// An import's master key opened none of the stored keys it was tried on.
public struct MasterKeyMismatchError: ToolcfgError {
    public var fingerprint: String
    public var checked: Int
    public var examples: [String]

    public var exitStatus: ExitStatus { .dataError }
    public var description: String {
        "the master key given (fingerprint \(fingerprint)) opens none of the \(checked) stored key(s) it was tried on "
            + "(\(examples.joined(separator: ", "))\(checked > examples.count ? ", ..." : "")): they are under another master key, "
            + "and importing would leave the table under two. Give the master key the application runs on (verify-keys tells which "
            + "opens the stored keys), or --allow-other-master-key to import under this one anyway; nothing was written"
    }
}

/// Encrypted triples to import with no master key to try them on, into a database that holds keys
/// already: nothing proves they are under the same key, and the secrets could end under two.
public struct UncheckedKeysRefused: ToolcfgError {
    public var file: String
    public var keyedTables: [String]
    public var exitStatus: ExitStatus { .usage }
    public var errorContext: ErrorContext { ErrorContext(file: file) }
    public var description: String {
        "\(file) holds encrypted keys (encrypted_api_key, salt, nonce) and no master key was given, while the database holds keys already "
            + "(\(keyedTables.joined(separator: ", "))): nothing can check that they are under the same master key, "
            + "and the secrets could end "
            + "under two. Give the master key (--master-key-file or TOOLCFG_MASTER_KEY) to check them, "
            + "or --allow-unchecked-keys to import them "
            + "unchecked; nothing was changed"
    }
}
