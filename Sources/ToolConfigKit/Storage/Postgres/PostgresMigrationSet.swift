import Foundation

extension MigrationSet {
    /// PostgreSQL's versions of the migrations, the files of `migrations/postgres/` embedded at
    /// build time: the same versions and descriptions as SQLite's set, in PostgreSQL's types.
    public static func embeddedPostgres() throws(MigrationError) -> MigrationSet {
        let files = embeddedPostgresMigrationFiles.map { file in
            (name: file.name, bytes: [UInt8](Data(base64Encoded: file.base64) ?? Data()))
        }
        return try MigrationSet(files: files, origin: .embedded)
    }
}
