import Foundation

/// `rotate --backup` on PostgreSQL: the rows of the tables that hold stored secrets, as the
/// current read transaction sees them, in a script that psql restores in one transaction:
///
///     psql -X -d postgresql://... -f backup.sql
///
/// Restoring puts back every row of those tables as it was (their stored keys under the master
/// key of that time): it deletes what the tables hold now and copies the rows in, with COPY's
/// text format (the one pg_dump writes), streamed from `COPY ... TO STDOUT` so memory stays flat.
/// The file is created 0600 and never over an existing one; a failed backup removes it.
struct PostgresTableBackup {
    let connection: PostgresConnection
    /// The tables that hold stored secrets, each once.
    let tables: [String]

    func write(to path: String) throws {
        let file = FileHandle(fileDescriptor: try PrivateFile.create(path), closeOnDealloc: true)
        var script = BackupScript(file: file, path: path)
        do {
            try writeScript(into: &script)
            try script.flush()
            try file.synchronize()
            try file.close()
        } catch {
            unlink(path)
            throw error
        }
    }

    private func writeScript(into script: inout BackupScript) throws {
        // Values are written as the restoring session will read them, whatever either session's
        // settings (as pg_dump pins them).
        let settings =
            "SET client_encoding = 'UTF8'; SET standard_conforming_strings = on; SET DateStyle = ISO; "
            + "SET IntervalStyle = postgres; SET extra_float_digits = 3;"
        try connection.execute(settings.replacingOccurrences(of: "SET ", with: "SET LOCAL "), context: "pinning the backup's value formats")
        let names = try tables.map { table in
            // Schema-qualified, so that a restore with another search_path finds the same table.
            try connection.queryText(
                """
                SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = to_regclass(quote_ident($1))
                """, [.text(table)], context: "naming \(table)") ?? quotedIdentifier(table)
        }
        script.append(
            """
            -- toolcfg rotate --backup: every row of \(Self.comment(tables.joined(separator: ", ")))
            -- in \(Self.comment(connection.url.redacted))
            -- as the rotation read them (\(ISO8601DateFormatter().string(from: Date()))), stored keys under the master key of that time.
            -- Restore (replaces the rows these tables hold, in one transaction):  psql -X -d DATABASE_URL -f THIS_FILE
            \\set ON_ERROR_STOP on
            \(settings.replacingOccurrences(of: "; ", with: ";\n"))
            BEGIN;
            LOCK TABLE \(names.joined(separator: ", ")) IN EXCLUSIVE MODE;

            """)
        for (table, name) in zip(tables, names) {
            let columns = try connection.query(
                """
                SELECT quote_ident(attname) FROM pg_attribute
                WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
                ORDER BY attnum
                """, [.text(table)], context: "reading the columns of \(table)")
            let list = (0..<columns.count).compactMap { columns.text($0, 0) }.joined(separator: ", ")
            script.append("DELETE FROM \(name);\nCOPY \(name) (\(list)) FROM stdin;\n")
            let rows = try connection.copyOut(
                "COPY (SELECT \(list) FROM \(name)) TO STDOUT",
                context: "backing up \(table)"
            ) { row in
                try script.appendLine(row.line)
            }
            script.append("\\.\n-- \(rows) rows of \(Self.comment(table))\n")
            try appendSequenceReset(of: table, name: name, into: &script)
            script.append("\n")
        }
        script.append("COMMIT;\n")
    }

    /// Text for a `--` comment: a name may hold a line break, which would end the comment.
    private static func comment(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }

    /// A column fed by a sequence (an identity or serial id): restored rows into a new database
    /// must not meet their own ids again, so the sequence moves past them when it is behind.
    private func appendSequenceReset(of table: String, name: String, into script: inout BackupScript) throws {
        let sequences = try connection.query(
            """
            SELECT quote_ident(attname), pg_get_serial_sequence(quote_ident($1), attname) FROM pg_attribute
            WHERE attrelid = to_regclass(quote_ident($1)) AND attnum > 0 AND NOT attisdropped
              AND pg_get_serial_sequence(quote_ident($1), attname) IS NOT NULL
            ORDER BY attnum
            """, [.text(table)], context: "reading the sequences of \(table)")
        for row in 0..<sequences.count {
            guard let column = sequences.text(row, 0), let sequence = sequences.text(row, 1) else { continue }
            let quoted = try connection.literal(sequence)
            let body = """
                PERFORM setval(\(quoted), m) FROM (SELECT max(\(column)) AS m FROM \(name)) AS x
                WHERE m > coalesce((SELECT last_value FROM pg_sequences
                                    WHERE format('%I.%I', schemaname, sequencename)::regclass = \(quoted)::regclass), 0);
                """
            // In a DO block, so that psql prints nothing; quoted with a tag the body does not hold.
            var tag = "$toolcfg$"
            while body.contains(tag) { tag = "$toolcfg\(tag.count)$" }
            script.append("DO \(tag) BEGIN \(body) END \(tag);\n")
        }
    }
}

/// The script's bytes on their way to the file, 64 KiB at a time.
private struct BackupScript {
    let file: FileHandle
    let path: String
    private var buffer: [UInt8] = []

    init(file: FileHandle, path: String) {
        self.file = file
        self.path = path
        buffer.reserveCapacity(Self.flushSize + 4096)
    }

    static let flushSize = 1 << 16

    mutating func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
    }

    mutating func appendLine(_ line: [UInt8]) throws {
        buffer.append(contentsOf: line)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= Self.flushSize { try flush() }
    }

    mutating func flush() throws {
        do {
            try file.write(contentsOf: buffer)
        } catch {
            throw PrivateFile.Failure(path: path, reason: SecretInput.reason(error), exitStatus: .ioError)
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
