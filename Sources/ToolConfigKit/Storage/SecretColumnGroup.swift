/// One group of columns that holds one secret under the master key: its ciphertext, salt and
/// nonce columns in one table (`encrypted_api_key / salt / nonce`, `encrypted_client_secret /
/// salt_client_secret / nonce_client_secret`, ...). A table may hold several (mcp_oauth_tokens:
/// the access and the refresh token). Rotation, verify-keys and the import's key check work
/// group by group; `SecretColumnMap` finds the groups of a database.
public struct SecretColumnGroup: Sendable, Hashable, Codable {
    public var table: String
    public var ciphertext: String
    public var salt: String
    public var nonce: String
    /// Whether the database lets the group be NULL (a row without that secret). All three NULL
    /// is an empty group; some NULL and some not is a corrupt row.
    public var nullable: Bool
    /// A column that names rows in reports besides the row key: the table's one-column primary
    /// key, else its `id` column.
    public var idColumn: String?
    public var origin: Origin

    /// How the group was found: the application's known groups, the naming rule, or
    /// `--secret-columns`.
    public enum Origin: String, Sendable, Codable {
        case application
        case namingRule = "naming_rule"
        case declared
    }

    public init(
        table: String, ciphertext: String, salt: String, nonce: String, nullable: Bool = true, idColumn: String? = nil,
        origin: Origin = .declared
    ) {
        self.table = table
        self.ciphertext = ciphertext
        self.salt = salt
        self.nonce = nonce
        self.nullable = nullable
        self.idColumn = idColumn
        self.origin = origin
    }

    /// The three columns: ciphertext, salt, nonce.
    public var columns: [String] { [ciphertext, salt, nonce] }

    /// "table (ciphertext, salt, nonce)", for messages.
    public var label: String { "\(table) (\(columns.joined(separator: ", ")))" }

    var quotedTable: String { quotedIdentifier(table) }

    /// The three columns quoted, of the table under the alias `prefix` ("t."), in order.
    func quotedColumns(_ prefix: String = "") -> [String] { columns.map { prefix + quotedIdentifier($0) } }

    /// The three columns quoted, by name.
    var quotedParts: (ciphertext: String, salt: String, nonce: String) {
        (quotedIdentifier(ciphertext), quotedIdentifier(salt), quotedIdentifier(nonce))
    }

    /// A reason about a value's parts, which `SecretError` names as the toolkit's own triple does
    /// ("salt: ..."), in this group's column names, and the column it is about (the ciphertext's
    /// when it names none).
    func naming(_ reason: String) -> (column: String, reason: String) {
        for (part, column) in [("encrypted_api_key", ciphertext), ("salt", salt), ("nonce", nonce)] where reason.hasPrefix(part + ":") {
            return (column, column + reason.dropFirst(part.count))
        }
        return (ciphertext, reason)
    }

    /// The column of a salt or nonce, quoted.
    func quoted(_ part: TriplePart) -> String {
        quotedIdentifier(part == .salt ? salt : nonce)
    }

    /// The condition that a row holds the whole group: the rows a rotation rewrites.
    func hasTriple(_ prefix: String = "") -> String {
        quotedColumns(prefix).map { "\($0) IS NOT NULL" }.joined(separator: " AND ")
    }

    /// The condition that a row holds any part of the group.
    func hasAnyPart(_ prefix: String = "") -> String {
        "(" + quotedColumns(prefix).map { "\($0) IS NOT NULL" }.joined(separator: " OR ") + ")"
    }

    /// The query that counts the group's values of scheme v1 and v2, in that order.
    var schemeCountingSQL: String {
        let ciphertext = quotedIdentifier(self.ciphertext)
        return
            "SELECT count(CASE WHEN substr(\(ciphertext), 1, 3) <> 'v2:' THEN 1 END), count(CASE WHEN substr(\(ciphertext), 1, 3) "
            + "= 'v2:' THEN 1 END) "
            + "FROM \(quotedTable) WHERE \(ciphertext) IS NOT NULL"
    }

    /// The query that sums the rows of this group and of `others` whose salt (or nonce) is
    /// `parameter` (the engine's placeholder): `SecretStore.countRows`'s, on either engine.
    func countingSQL(_ part: TriplePart, acrossAlso others: [SecretColumnGroup], parameter: String) -> String {
        "SELECT sum(n) FROM ("
            + ([self] + others.filter { $0 != self })
            .map { "SELECT count(*) AS n FROM \($0.quotedTable) WHERE \($0.quoted(part)) = \(parameter)" }
            .joined(separator: " UNION ALL ") + ") AS counts"
    }
}

/// The parts of a stored secret that must never repeat.
public enum TriplePart: String, Sendable {
    case salt, nonce
}

/// A table's columns as the engine's catalog has them: what `SecretColumnMap` looks at.
public struct TableColumns: Sendable, Equatable {
    public struct Column: Sendable, Equatable {
        public var name: String
        public var notNull: Bool

        public init(name: String, notNull: Bool) {
            self.name = name
            self.notNull = notNull
        }
    }

    public var table: String
    public var columns: [Column]
    /// The primary key's columns, in order (empty for none).
    public var primaryKey: [String]

    public init(table: String, columns: [Column], primaryKey: [String]) {
        self.table = table
        self.columns = columns
        self.primaryKey = primaryKey
    }

    func column(_ name: String) -> Column? {
        columns.first { $0.name.lowercased() == name.lowercased() }
    }
}

extension TableColumns {
    /// Tables from catalog rows ordered by table: each row one column, with its position in the
    /// primary key (nil when not in it).
    static func collect(_ rows: [(table: String, column: String, notNull: Bool, keyPosition: Int64?)]) -> [TableColumns] {
        var tables: [TableColumns] = []
        var keys: [(position: Int64, column: String)] = []
        func finish() {
            if !tables.isEmpty { tables[tables.count - 1].primaryKey = keys.sorted { $0.position < $1.position }.map(\.column) }
            keys = []
        }
        for row in rows {
            if tables.last?.table != row.table {
                finish()
                tables.append(TableColumns(table: row.table, columns: [], primaryKey: []))
            }
            tables[tables.count - 1].columns.append(Column(name: row.column, notNull: row.notNull))
            if let position = row.keyPosition { keys.append((position, row.column)) }
        }
        finish()
        return tables
    }
}
