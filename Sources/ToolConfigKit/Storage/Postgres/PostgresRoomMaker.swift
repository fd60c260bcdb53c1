import Foundation

/// `rotate --make-room` on PostgreSQL: before the rotation reads anything, gives every keyed row
/// of a table room on its own page for a second version of itself, so that the rotation's write
/// phase rewrites each row in place (a HOT update: one WAL record, no index entry) instead of
/// moving it to another page and into every index (seven WAL records through five indexes, about
/// 12 µs a row against 2.2 µs: docs/postgresql.md, "How long the write phase is on PostgreSQL").
///
/// 1. The table's fillfactor goes to 50 (the write phase rewrites a row once, all its groups in
///    one UPDATE), so rows inserted or moved from now on fill pages only halfway
///    (`ALTER TABLE ... SET (fillfactor)` takes SHARE UPDATE EXCLUSIVE: the application's
///    reads and writes never wait for it).
/// 2. The keyed rows of every page without that room are moved, a few thousand per short
///    transaction, by an update that writes each row as it is (`SET nonce = nonce`) after
///    locking it. Rows are locked as they are now (READ COMMITTED), so nothing the application
///    wrote is undone; its writes to those rows wait for one batch at most; rows it holds are
///    skipped, never waited for. Whole pages go in one batch, so that a page's old versions
///    cannot be pruned and its room used up again while its rows are still being moved.
/// 3. VACUUM after every quarter of the rows and at the end, so the emptied pages take moved
///    rows (the table ends about twice its packed size, not three times).
///
/// No value changes, so the pass needs no all-or-nothing: stopped anywhere (an error, a kill),
/// it leaves the same data, and a rerun carries on where it stopped. Every statement names the
/// table with ONLY: rows of a child table (inheritance) are moved by the child's own pass.
struct PostgresRoomMaker: RoomMaking {
    let connection: PostgresConnection
    /// The table's column groups (one or more, all of one table).
    let groups: [SecretColumnGroup]
    /// The table's fillfactor now.
    let fillfactor: Int
    /// What a row's values kept out of line (TOAST) add to pg_column_size(t.*) beyond the
    /// pointer the page holds for each, as SQL over the row `t` ("0" without such columns).
    private let outOfLineExcess: String

    /// Half of each page: room for the one new version of each row that the write phase writes
    /// (every group of a table in one UPDATE: `PostgresRotationStage.applyUnchanged(togetherWith:)`).
    var targetFillfactor: Int { 50 }
    /// How long one batch should hold its rows: what an application write to them may wait.
    var batchTarget = 0.1
    /// Rows to move in the first batch, and the bounds of the later ones (sized from the rows
    /// per second the batches before moved).
    var firstBatchRows = 2_000
    var batchRows: ClosedRange<Int> = 200...50_000
    /// The most pages one batch spans: its statement reads every row of them, so scattered pages
    /// without room must not make one batch read the whole table while it holds its rows.
    var batchSpan: Int64 = 1_024

    private var name: String { groups[0].table }
    private var only: String { "ONLY \(groups[0].quotedTable)" }
    /// A row that holds a whole group: one a rotation rewrites.
    private var keyed: String { "(" + groups.map { $0.hasTriple("t.") }.joined(separator: " OR ") + ")" }
    /// How many new versions of the row the write phase writes: one if it holds any group.
    private var versions: String { "(CASE WHEN \(keyed) THEN 1 ELSE 0 END)" }

    /// Reads the table's shape and refuses, before anything changes, what would make the moves
    /// wrong (update triggers or rules would act on them), impossible (a partitioned table, a
    /// role that may not set the fillfactor or VACUUM) or useless (an index on a triple column:
    /// PostgreSQL never rewrites such rows in place).
    init(connection: PostgresConnection, groups: [SecretColumnGroup]) throws {
        precondition(!groups.isEmpty && groups.allSatisfy { $0.table == groups[0].table })
        self.connection = connection
        self.groups = groups
        let table = groups[0].table
        let secretColumns = groups.flatMap(\.columns)
        let triple = try secretColumns.map { try connection.literal($0) }.joined(separator: ", ")
        let shape = try connection.query(
            """
            SELECT c.relkind::text,
                   coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 100),
                   (SELECT string_agg(quote_ident(g.tgname), ', ' ORDER BY g.tgname) FROM pg_trigger g
                    WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgenabled <> 'D' AND g.tgtype & 16 <> 0),
                   (SELECT string_agg(quote_ident(r.rulename), ', ' ORDER BY r.rulename) FROM pg_rewrite r WHERE r.ev_class = c.oid),
                   (SELECT string_agg(i.indexrelid::regclass::text, ', ' ORDER BY i.indexrelid::regclass::text) FROM pg_index i
                    WHERE i.indrelid = c.oid AND EXISTS (
                        SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname IN (\(triple)) AND (
                            a.attnum = ANY (i.indkey::int2[])
                            -- expressions and partial-index conditions: recorded on the index, or on its constraint
                            OR EXISTS (SELECT 1 FROM pg_depend d
                                       WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid = a.attnum
                                         AND ((d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid)
                                              OR (d.classid = 'pg_constraint'::regclass
                                                  AND d.objid IN (SELECT k.oid FROM pg_constraint k WHERE k.conindid = i.indexrelid))))))),
                   pg_has_role(c.relowner, 'USAGE'),
                   (SELECT string_agg(format('CASE WHEN pg_column_size(t.%1$I) >= 2032 THEN pg_column_size(t.%1$I) - 18 ELSE 0 END',
                                             a.attname), ' + ')
                    FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attlen = -1 AND a.attstorage <> 'p')
            FROM pg_class c WHERE c.oid = to_regclass(quote_ident($1))
            """, [.text(table)], context: "reading the storage of \(table)")
        guard shape.count == 1 else { throw UsageError("--make-room: table \(table) is gone") }
        fillfactor = Int(try shape.int64(0, 1) ?? 100)
        outOfLineExcess = shape.text(0, 6) ?? "0"
        let refusal = "--make-room refused, nothing changed: \(table)"
        if shape.text(0, 0) != "r" {
            throw UsageError(
                "\(refusal) is partitioned; give its partitions room (ALTER TABLE ... SET (fillfactor = \(targetFillfactor))) "
                    + "and rotate without --make-room"
            )
        }
        // Moving a row is an UPDATE: the table's update triggers and rules would act on each row.
        if let triggers = shape.text(0, 2) {
            throw UsageError("\(refusal) has update triggers (\(triggers)) that moving its rows would fire; rotate without --make-room")
        }
        if let rules = shape.text(0, 3) {
            throw UsageError("\(refusal) has rules (\(rules)) that moving its rows would set off; rotate without --make-room")
        }
        if let indexes = shape.text(0, 4) {
            throw UsageError(
                "\(refusal) has indexes on its secret columns \(secretColumns.joined(separator: ", ")) (\(indexes)), "
                    + "so PostgreSQL rewrites its rows on other pages however much room they have; rotate without --make-room"
            )
        }
        if try shape.bool(0, 5) != true {
            throw UsageError(
                "\(refusal) belongs to another role: only its owner (or a superuser) may set its fillfactor and VACUUM it; "
                    + "rotate --make-room as the owner, or have the owner run ALTER TABLE \(groups[0].quotedTable) "
                    + "SET (fillfactor = \(targetFillfactor)) and rotate without --make-room (the next rotation then moves the rows, "
                    + "the ones after it rewrite them in place)"
            )
        }
    }

    /// Pages (block numbers) of `t` within `range`, with their keyed rows, whose rows would not
    /// fit the new version of each keyed row: a row takes its tuple MAXALIGNed (8) and a line
    /// pointer (4), a page its size less its header (24). pg_column_size(t.*) counts a value
    /// kept out of line (TOAST) in full, where the page holds an 18-byte pointer to it; a value
    /// of 2032 bytes or more (the toaster's default target for a whole row) is taken to be out of
    /// line: an estimate (PostgreSQL 15 cannot tell from SQL where a value is kept).
    private func pagesWithoutRoom(where range: String) -> String {
        let footprint = "(pg_column_size(t.*) - (\(outOfLineExcess)) + 7) / 8 * 8 + 4"
        return """
            SELECT (t.ctid::text::point)[0]::bigint AS page, count(*) FILTER (WHERE \(keyed)) AS keyed
            FROM \(only) AS t WHERE \(range) GROUP BY 1
            HAVING sum(\(footprint)) + sum(\(footprint) * \(versions)) > current_setting('block_size')::int - 24
            """
    }

    /// Every page without room, in order, with its keyed rows.
    private func pagesWithoutRoom() throws -> [(page: Int64, rows: Int)] {
        let rows = try connection.query(
            "SELECT page, keyed FROM (\(pagesWithoutRoom(where: "true"))) AS p WHERE keyed > 0 ORDER BY page",
            context: "finding the rows of \(name) without room")
        return try (0..<rows.count).map { (try rows.int64($0, 0) ?? 0, Int(try rows.int64($0, 1) ?? 0)) }
    }

    func run(dryRun: Bool, progress: ProgressHandler) throws -> RoomReport {
        let pages = try pagesWithoutRoom()
        let without = pages.reduce(0) { $0 + $1.rows }
        var report = RoomReport(
            fillfactorBefore: fillfactor, fillfactor: fillfactor, rowsWithoutRoom: without, rowsMoved: 0,
            batches: 0, longestBatchSeconds: 0, rowsLeftWithoutRoom: without)
        guard !dryRun else { return report }
        if fillfactor > targetFillfactor {
            try connection.execute(
                "ALTER TABLE \(only) SET (fillfactor = \(targetFillfactor))", context: "setting the fillfactor of \(name)")
            report.fillfactor = targetFillfactor
        }
        guard !pages.isEmpty else { return report }
        try move(pages, into: &report, progress: progress)
        report.rowsLeftWithoutRoom = try pagesWithoutRoom().reduce(0) { $0 + $1.rows }
        return report
    }

    /// Batches of whole pages holding about `size` rows to move, each sized from the rows per
    /// second of the batch before to last about `batchTarget`. A batch re-finds the pages
    /// without room in its range as they are then, so rows the application moved meanwhile
    /// are left where they went.
    private func move(_ pages: [(page: Int64, rows: Int)], into report: inout RoomReport, progress: ProgressHandler) throws {
        let clock = ContinuousClock()
        var next = 0, size = firstBatchRows, sinceVacuum = 0
        progress(ProgressEvent(.makingRoom, total: report.rowsWithoutRoom))
        while next < pages.count {
            var end = next, rows = 0
            repeat {
                rows += pages[end].rows
                end += 1
            } while end < pages.count && rows + pages[end].rows <= size && pages[end].page - pages[next].page < batchSpan
            let range = "t.ctid >= '(\(pages[next].page),0)'::tid AND t.ctid < '(\(pages[end - 1].page + 1),0)'::tid"
            let started = clock.now
            // SKIP LOCKED: a row the application holds stays where it is, and the pass never
            // waits for the application, so it can never be part of a deadlock with it.
            let moved = try connection.query(
                """
                WITH locked AS (
                    SELECT t.ctid AS row FROM \(only) AS t
                    WHERE \(range) AND \(keyed)
                      AND (t.ctid::text::point)[0]::bigint IN (SELECT page FROM (\(pagesWithoutRoom(where: range))) AS p)
                    FOR UPDATE OF t SKIP LOCKED)
                UPDATE \(only) AS t SET \(quotedIdentifier(groups[0].nonce)) = t.\(quotedIdentifier(groups[0].nonce))
                FROM locked WHERE t.ctid = locked.row AND \(range)
                """, context: "moving rows of \(name) to pages with room"
            ).affectedRows
            let seconds = (clock.now - started).inSeconds
            report.rowsMoved += moved
            report.batches += 1
            report.longestBatchSeconds = max(report.longestBatchSeconds, seconds)
            progress(ProgressEvent(.makingRoom, done: report.rowsMoved, total: report.rowsWithoutRoom))
            if moved > 0 {
                let fitting = Int((Double(moved) * batchTarget / max(seconds, 0.001)).rounded())
                size = min(max(fitting, batchRows.lowerBound), batchRows.upperBound, size * 2)
            }
            next = end
            sinceVacuum += moved
            if sinceVacuum >= report.rowsWithoutRoom / 4 || next == pages.count {
                try vacuum()
                sinceVacuum = 0
            }
        }
    }

    /// Marks the emptied pages' space free for moved and new rows. SKIP_LOCKED: a VACUUM already
    /// running (autovacuum) does the same, so this one is not waited for. (VACUUM of a parent
    /// never takes in its inheritance children.)
    private func vacuum() throws {
        try connection.execute("VACUUM (SKIP_LOCKED) \(groups[0].quotedTable)", context: "vacuuming \(name)")
    }
}
