import Foundation

/// One SQL file of the migrations folder, with its exact bytes.
public struct MigrationScript: Sendable, Hashable {
    public var fileName: String
    public var bytes: [UInt8]
    public var sql: String
}

/// A migration as sqlx sees it: version and description from the file name, checksum =
/// SHA-384 of the up file's bytes, and an optional down file.
public struct Migration: Sendable, Hashable {
    public var version: Int64
    public var description: String
    public var up: MigrationScript
    public var down: MigrationScript?

    public var checksum: [UInt8] { Digest.sha384(up.bytes) }

    /// sqlx runs a script whose first line is `-- no-transaction` outside a transaction.
    public var runsWithoutTransaction: Bool { up.sql.hasPrefix("-- no-transaction") }
}

/// How sqlx reads a file name: `<VERSION>_<DESCRIPTION>.sql`, `.up.sql` or `.down.sql`;
/// the description is the rest with the suffix removed and `_` turned into spaces.
struct MigrationFileName {
    enum Kind { case simple, up, down }
    var version: Int64
    var description: String
    var kind: Kind

    /// nil for names sqlx ignores (not `<digits>_<text>.sql`).
    init?(_ name: String) {
        guard let underscore = name.firstIndex(of: "_"), name.hasSuffix(".sql") else { return nil }
        guard let version = Int64(name[..<underscore]), version > 0 else { return nil }
        let rest = name[name.index(after: underscore)...]
        let suffix: String
        if rest.hasSuffix(".up.sql") {
            kind = .up; suffix = ".up.sql"
        } else if rest.hasSuffix(".down.sql") {
            kind = .down; suffix = ".down.sql"
        } else {
            kind = .simple; suffix = ".sql"
        }
        self.version = version
        description = String(rest.dropLast(suffix.count)).replacingOccurrences(of: "_", with: " ")
    }
}
