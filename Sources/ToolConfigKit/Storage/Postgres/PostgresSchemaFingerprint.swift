import Foundation

/// The schema fingerprint from PostgreSQL's catalogs, over the database's own schemas (not
/// pg_catalog, information_schema, TOAST or temporary ones). Names outside the current schema
/// are qualified with theirs.
extension PostgresMigrationStore {
    /// The database's own schemas, with the prefix that qualifies a name for display.
    private static let namespaces = """
        ns AS (
            SELECT oid, nspname, CASE WHEN nspname = current_schema() THEN '' ELSE nspname || '.' END AS prefix
            FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname !~ '^pg_'
        )
        """

    /// Every object with its definition as the catalogs give it: schemas, tables, views, indexes,
    /// constraints, sequences (with the table that owns one), triggers, functions, enums, domains
    /// and extensions. Constraints and triggers are named "name on table": their names are unique
    /// only per table.
    private static let objectsSQL = """
        WITH \(namespaces)
        SELECT 'schema', nspname, '', NULL FROM ns
        UNION ALL
        SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
               ns.prefix || c.relname, ns.prefix || c.relname,
               CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END
        FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        UNION ALL
        SELECT 'index', ns.prefix || i.relname, ns.prefix || t.relname, pg_get_indexdef(i.oid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN ns ON ns.oid = i.relnamespace
        UNION ALL
        SELECT 'constraint', con.conname || ' on ' || ns.prefix || t.relname, ns.prefix || t.relname, pg_get_constraintdef(con.oid)
        FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid JOIN ns ON ns.oid = t.relnamespace
        UNION ALL
        SELECT 'sequence', ns.prefix || s.relname, coalesce(owner.name, ns.prefix || s.relname),
               format('AS %s START %s INCREMENT %s MINVALUE %s MAXVALUE %s CACHE %s%s', format_type(q.seqtypid, NULL),
                      q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache, CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END)
        FROM pg_sequence q JOIN pg_class s ON s.oid = q.seqrelid JOIN ns ON ns.oid = s.relnamespace
        LEFT JOIN LATERAL (
            SELECT tns.prefix || t.relname AS name FROM pg_depend d
            JOIN pg_class t ON t.oid = d.refobjid JOIN ns tns ON tns.oid = t.relnamespace
            WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid AND d.refclassid = 'pg_class'::regclass
              AND d.deptype IN ('a', 'i')
            LIMIT 1
        ) owner ON true
        UNION ALL
        SELECT 'trigger', tg.tgname || ' on ' || ns.prefix || t.relname, ns.prefix || t.relname, pg_get_triggerdef(tg.oid)
        FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid JOIN ns ON ns.oid = t.relnamespace
        WHERE NOT tg.tgisinternal
        UNION ALL
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
               ns.prefix || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', '', pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p') AND NOT EXISTS (
            SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
        UNION ALL
        SELECT CASE t.typtype WHEN 'e' THEN 'enum' ELSE 'domain' END, ns.prefix || t.typname, '',
               CASE t.typtype
                   WHEN 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                  FROM pg_enum e WHERE e.enumtypid = t.oid)
                   ELSE format_type(t.typbasetype, t.typtypmod) || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                        || coalesce(' DEFAULT ' || t.typdefault, '')
               END
        FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd')
        UNION ALL
        SELECT 'extension', extname, '', extversion FROM pg_extension
        ORDER BY 1, 2
        """

    /// Each table's columns with type, NOT NULL, default or generation, identity and collation.
    private static let columnsSQL = """
        WITH \(namespaces)
        SELECT ns.prefix || c.relname, a.attname,
               a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                       ELSE coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') END
               || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                                     WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
               || CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                       THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
        JOIN pg_type ty ON ty.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, a.attnum
        """

    /// Each table's indexes: unique, partial, and their columns (separated by U+001F).
    private static let indexesSQL = """
        WITH \(namespaces)
        SELECT tns.prefix || t.relname, ns.prefix || i.relname, x.indisunique, x.indpred IS NOT NULL,
               (SELECT string_agg(CASE WHEN k.attnum = 0 THEN '<expression>' ELSE a.attname END, chr(31) ORDER BY k.ord)
                FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
                LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN ns ON ns.oid = i.relnamespace
        JOIN pg_class t ON t.oid = x.indrelid JOIN ns tns ON tns.oid = t.relnamespace
        ORDER BY 1, 2
        """

    /// Sequences that have been used, by name.
    private static let sequencesSQL = """
        SELECT CASE WHEN schemaname = current_schema() THEN '' ELSE schemaname || '.' END || sequencename, last_value
        FROM pg_sequences WHERE last_value IS NOT NULL AND schemaname <> 'information_schema' AND schemaname !~ '^pg_'
        """

    struct UserTable {
        /// For display: qualified only outside the current schema.
        var name: String
        var quotedName: String
    }

    /// The tables of the database's own schemas (partitions through their parent).
    func userTables() throws -> [UserTable] {
        let rows = try connection.query(
            """
            WITH \(Self.namespaces)
            SELECT ns.prefix || c.relname, quote_ident(ns.nspname) || '.' || quote_ident(c.relname)
            FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1
            """, context: "listing the tables")
        return (0..<rows.count).map { UserTable(name: rows.text($0, 0) ?? "", quotedName: rows.text($0, 1) ?? "") }
    }

    func fingerprint() throws -> SchemaFingerprint {
        let objectRows = try connection.query(Self.objectsSQL, context: "reading the catalogs")
        let objects = (0..<objectRows.count).map { row in
            SchemaFingerprint.Object(
                type: objectRows.text(row, 0) ?? "", name: objectRows.text(row, 1) ?? "",
                table: objectRows.text(row, 2) ?? "", sql: objectRows.text(row, 3))
        }
        let columnRows = try connection.query(Self.columnsSQL, context: "reading the columns")
        var columns: [String: (names: [String], descriptions: [String])] = [:]
        for row in 0..<columnRows.count {
            let table = columnRows.text(row, 0) ?? ""
            columns[table, default: ([], [])].names.append(columnRows.text(row, 1) ?? "")
            columns[table, default: ([], [])].descriptions.append(columnRows.text(row, 2) ?? "")
        }
        let indexRows = try connection.query(Self.indexesSQL, context: "reading the indexes")
        var indexes: [String: [SchemaFingerprint.Index]] = [:]
        for row in 0..<indexRows.count {
            indexes[indexRows.text(row, 0) ?? "", default: []].append(
                .init(
                    name: indexRows.text(row, 1) ?? "", unique: try indexRows.bool(row, 2) ?? false,
                    partial: try indexRows.bool(row, 3) ?? false,
                    columns: (indexRows.text(row, 4) ?? "").split(separator: "\u{1F}").map(String.init)))
        }
        let tables = try userTables().map { table in
            let (rows, digest) = try rowDigest(
                table, columns: SchemaFingerprint.digestedColumns(of: table.name, columns[table.name]?.names ?? []))
            return SchemaFingerprint.Table(
                name: table.name, columns: columns[table.name]?.descriptions ?? [],
                indexes: indexes[table.name] ?? [], rows: rows, digest: digest)
        }
        let sequenceRows = try connection.query(Self.sequencesSQL, context: "reading the sequences")
        var sequences: [String: Int64] = [:]
        for row in 0..<sequenceRows.count {
            sequences[sequenceRows.text(row, 0) ?? ""] = try sequenceRows.int64(row, 1)
        }
        return SchemaFingerprint(objects: objects, tables: tables.sorted { $0.name < $1.name }, sequences: sequences, engine: .init())
    }

    /// The row count, and a digest of the rows as COPY's text format writes them, in the order of
    /// that text (byte order): the same rows give the same digest whatever their physical order.
    private func rowDigest(_ table: UserTable, columns: [String]) throws -> (Int, String) {
        let select = "SELECT " + columns.map(quotedIdentifier).joined(separator: ", ") + " FROM \(table.quotedName)"
        let digest = SHA256Stream()
        let count = try connection.copyOut(
            "COPY (SELECT * FROM (\(select)) r ORDER BY r::text COLLATE \"C\") TO STDOUT",
            context: "reading the rows of \(table.name)"
        ) { row in
            (row.line + [0x0A]).withUnsafeBytes { digest.update($0) }
        }
        return (Int(count), Digest.hex(digest.finish().prefix(16)))
    }
}
