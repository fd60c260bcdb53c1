import Foundation
import Testing
import ToolConfigKit

/// A new database of either engine for one test, migrated by the built-in migrations unless told
/// not: an SQLite file in a temporary folder, or a scratch database on the test server (dropped by
/// `drop()`).
/// What lets one test run on both engines (`@Test(arguments: ScratchDatabase.engines)`).
package final class ScratchDatabase {
    package let engine: DatabaseEngine
    package let location: DatabaseLocation
    private let folder: TemporaryFolder?
    private let postgres: ScratchPostgresDatabase?

    /// SQLite always; PostgreSQL where the tests have a server (in CI always: without one, its
    /// cases fail there rather than vanish).
    package static var engines: [DatabaseEngine] { PostgresTestServer.shouldRun ? [.sqlite, .postgresql] : [.sqlite] }

    package init(_ engine: DatabaseEngine, migrated: Bool = true) throws {
        self.engine = engine
        switch engine {
        case .sqlite:
            let folder = try TemporaryFolder()
            self.folder = folder
            postgres = nil
            location = .sqlite(path: folder.path("scratch.db"))
            if migrated {
                try migratedDatabase(at: folder.path("scratch.db")).close()
            } else {
                try SQLiteConnection(path: folder.path("scratch.db"), mode: .readWriteCreate).close()
            }
        case .postgresql:
            let postgres = try ScratchPostgresDatabase()
            self.postgres = postgres
            folder = nil
            location = .postgres(postgres.url)
            do {
                if migrated { _ = try Migrator(database: try postgres.connect(), migrations: try .embeddedPostgres()).up() }
            } catch {
                postgres.drop()
                throw error
            }
        }
    }

    package func connect() throws -> any Database {
        try location.open(mode: .readWrite, busyTimeout: .seconds(10))
    }

    package func drop() { postgres?.drop() }

    /// Makes it the application's database before toolcfg's 0007: the application's own tables
    /// (api_model_aliases with encrypted keys, app_settings, downloads) and a sqlx ledger with
    /// versions 1 to 6 that have no file in toolcfg's folder. Expects an unmigrated database.
    package func loadApplicationDatabaseBefore0007() throws {
        switch location {
        case .sqlite(let path): try makeApplicationDatabase(at: path)
        case .postgres: try PostgresFixtures.load("app-before-0007.sql", into: try postgres!.connect())
        }
    }

    /// How reports name it: the path, or the URL without a password.
    package var reportedName: String { location.description }
}
