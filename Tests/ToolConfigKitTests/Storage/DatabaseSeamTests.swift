import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// What `Database` promises on either engine, through the seam alone: transactions that keep all
/// or nothing, the one savepoint helper, and a script's error naming its line.
@Suite("The database seam on either engine")
struct DatabaseSeamTests {
    struct Stop: Error {}

    /// A scratch database with an empty table `t (x bigint)`.
    static func withTable(_ engine: DatabaseEngine, _ body: (any Database) throws -> Void) throws {
        let scratch = try ScratchDatabase(engine, migrated: false)
        defer { scratch.drop() }
        let database = try scratch.connect()
        try database.execute("CREATE TABLE t (x bigint)", context: nil)
        try body(database)
    }

    static func rows(_ database: any Database) throws -> Int64? { try database.migrationStore().rowCounts()["t"] }

    @Test(
        "a write transaction commits all, or on an error nothing; a rolled-back write keeps nothing", arguments: ScratchDatabase.engines)
    func transactions(_ engine: DatabaseEngine) throws {
        try Self.withTable(engine) { database in
            let failed = thrownError {
                try database.transaction(.write) {
                    try database.execute("INSERT INTO t VALUES (1)", context: nil)
                    throw Stop()
                }
            }
            #expect(failed is Stop)
            #expect(try Self.rows(database) == 0 && !database.isInTransaction)
            try database.transaction(.rolledBackWrite) { try database.execute("INSERT INTO t VALUES (2)", context: nil) }
            #expect(try Self.rows(database) == 0 && !database.isInTransaction)
            try database.transaction(.write) {
                try database.execute("INSERT INTO t VALUES (3)", context: nil)
                try database.execute("INSERT INTO t VALUES (4)", context: nil)
            }
            #expect(try Self.rows(database) == 2)
        }
    }

    @Test(
        """
        inSavepoint opens a transaction of its own outside one; inside one (nested too) a failure, a failed statement \
        included, undoes only its own work and leaves the transaction usable
        """,
        arguments: ScratchDatabase.engines)
    func savepoints(_ engine: DatabaseEngine) throws {
        try Self.withTable(engine) { database in
            try database.inSavepoint { try database.execute("INSERT INTO t VALUES (1)", context: nil) }
            #expect(try Self.rows(database) == 1 && !database.isInTransaction)
            #expect(throws: Stop.self) {
                try database.inSavepoint {
                    try database.execute("INSERT INTO t VALUES (2)", context: nil)
                    throw Stop()
                }
            }
            #expect(try Self.rows(database) == 1 && !database.isInTransaction)

            try database.transaction(.write) {
                try database.execute("INSERT INTO t VALUES (10)", context: nil)
                // A failed statement: on PostgreSQL it would spoil the whole transaction without the savepoint.
                #expect(throws: (any Error).self) {
                    try database.inSavepoint {
                        try database.execute("INSERT INTO t VALUES (11)", context: nil)
                        try database.execute("INSERT INTO no_such_table VALUES (1)", context: nil)
                    }
                }
                try database.inSavepoint {
                    try database.execute("INSERT INTO t VALUES (12)", context: nil)
                    #expect(throws: Stop.self) {
                        try database.inSavepoint {
                            try database.execute("INSERT INTO t VALUES (13)", context: nil)
                            throw Stop()
                        }
                    }
                }
                #expect(database.isInTransaction)
            }
            // 1, then 10 and 12 of the transaction: 11 and 13 went with their savepoints.
            #expect(try Self.rows(database) == 3)
        }
    }

    /// PostgreSQL runs a script as one request and names a line only where its error points at
    /// a place in it (a name or a syntax error, as here); SQLite runs it statement by statement.
    @Test("a script's error names the line of the failing statement, comments counted", arguments: ScratchDatabase.engines)
    func scriptLine(_ engine: DatabaseEngine) throws {
        try Self.withTable(engine) { database in
            let script = "CREATE TABLE a (x int);\n-- a comment\n/* a block\n comment */\nSELECT ünïcode, x FROM missing;\n"
            let error = try #require(thrownError { try database.execute(script, context: "f.sql") } as? any EngineError)
            #expect(error.reason.hasPrefix("f.sql, line 5: "), "\(error.reason)")
            #expect(error.reason.contains("missing"), "\(error.reason)")
        }
    }
}
