import Foundation

/// `rotate --make-room` on PostgreSQL: before the rotation reads anything, gives every keyed row
/// of a table room on its own page for a second version of itself, so that the rotation's write
/// phase rewrites each row in place (a HOT update: one WAL record, no index entry) instead of
/// moving it to another page and into every index (seven WAL records through five indexes, about
/// 12 µs a row against 2.2 µs: README, "How long the write phase is on PostgreSQL").
///
/// 1. The table's fillfactor goes to 50, so rows inserted or moved from now on fill pages only
///    halfway (`ALTER TABLE ... SET (fillfactor)` takes SHARE UPDATE EXCLUSIVE: the application's
///    reads and writes never wait for it).
/// 2. The keyed rows of every page without that room are moved, a few pages per short
///    transaction, by an update that writes each row as it is (`SET nonce = nonce`) after
///    locking it. Rows are locked as they are now (READ COMMITTED), so nothing the application
///    wrote is undone; its writes to those rows wait for one batch at most; rows it holds are
///    skipped, never waited for. Whole pages go in one batch, so that a page's old versions
///    cannot be pruned and its room used up again while its rows are still being moved.
/// 3. VACUUM after every quarter of the table and at the end, so the emptied pages take moved
///    rows (the table ends about twice its packed size, not three times).
///
/// No value changes, so the pass needs no all-or-nothing: stopped anywhere (an error, a kill),
/// it leaves the same data, and a rerun carries on where it stopped.
struct PostgresRoomMaker {
    let connection: PostgresConnection
    let table: EncryptedTable

    static let fillfactor = 50
    /// How long one batch may hold its rows: what an application write to them may wait.
    static let batchTarget = 0.1
    static let firstBatchPages: Int64 = 32
    static let batchPages: ClosedRange<Int64> = 4...4096

    private var name: String { table.name }
    private var quoted: String { table.quotedName }

    private static let keyed = "t.encrypted_api_key IS NOT NULL AND t.salt IS NOT NULL AND t.nonce IS NOT NULL"

    /// The pages (block numbers) among `t`'s rows in `range` whose rows would not fit a second
    /// version of each keyed row: a row takes its tuple MAXALIGNed (8) and a line pointer (4); a
    /// page has its size less its header (24) for them.
    private func pagesWithoutRoom(where range: String) -> String {
        let footprint = "(pg_column_size(t.*) + 7) / 8 * 8 + 4"
        return """
            SELECT (t.ctid::text::point)[0]::bigint AS page, count(*) FILTER (WHERE \(Self.keyed)) AS keyed
            FROM \(quoted) AS t WHERE \(range) GROUP BY 1
            HAVING sum(\(footprint)) + coalesce(sum(\(footprint)) FILTER (WHERE \(Self.keyed)), 0) > current_setting('block_size')::int - 24
            """
    }

    private static func pageRange(_ low: Int64, _ high: Int64) -> String {
        "t.ctid >= '(\(low),0)'::tid AND t.ctid < '(\(high),0)'::tid"
    }

    func run(dryRun: Bool, progress: ProgressHandler) throws -> RoomReport {
        let shape = try connection.query("""
            SELECT c.relkind::text,
                   coalesce((SELECT option_value::int FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), 100),
                   (SELECT string_agg(quote_ident(g.tgname), ', ' ORDER BY g.tgname) FROM pg_trigger g
                    WHERE g.tgrelid = c.oid AND NOT g.tgisinternal AND g.tgenabled <> 'D' AND g.tgtype & 16 <> 0),
                   pg_relation_size(c.oid) / current_setting('block_size')::int
            FROM pg_class c WHERE c.oid = to_regclass(quote_ident($1))
            """, [.text(name)], context: "reading the storage of \(name)")
        guard shape.count == 1 else { throw UsageError("--make-room: table \(name) is gone") }
        if shape.text(0, 0) != "r" {
            throw UsageError("--make-room: \(name) is a partitioned table; give its partitions room (ALTER TABLE ... SET (fillfactor = \(Self.fillfactor))) and rotate without --make-room")
        }
        // Moving a row is an UPDATE: the table's update triggers would fire for each row.
        if let triggers = shape.text(0, 2) {
            throw UsageError("--make-room: \(name) has update triggers (\(triggers)) that moving its rows would fire; rotate without --make-room")
        }
        let before = Int(try shape.int64(0, 1) ?? 100)
        var report = RoomReport(fillfactorBefore: before, fillfactor: before, rowsWithoutRoom: 0, rowsMoved: 0,
                                batches: 0, longestBatchSeconds: 0, rowsLeftWithoutRoom: 0)
        report.rowsWithoutRoom = try rowsWithoutRoom()
        report.rowsLeftWithoutRoom = report.rowsWithoutRoom
        guard !dryRun, report.rowsWithoutRoom > 0 || before > Self.fillfactor else { return report }

        if before > Self.fillfactor {
            do throws(PostgresError) {
                try connection.execute("ALTER TABLE \(quoted) SET (fillfactor = \(Self.fillfactor))", context: "setting the fillfactor of \(name)")
            } catch {
                guard error.sqlState == "42501" else { throw error }
                throw UsageError("--make-room: only the owner of \(name) may set its fillfactor; as the owner run ALTER TABLE \(quoted) SET (fillfactor = \(Self.fillfactor)), then rotate --make-room again")
            }
            report.fillfactor = Self.fillfactor
        }
        guard report.rowsWithoutRoom > 0 else { return report }
        try move(pages: try shape.int64(0, 3) ?? 0, into: &report, progress: progress)
        report.rowsLeftWithoutRoom = try rowsWithoutRoom()
        return report
    }

    /// Keyed rows on pages without room, in the whole table.
    private func rowsWithoutRoom() throws -> Int {
        Int(try connection.queryInt64("SELECT coalesce(sum(keyed), 0) FROM (\(pagesWithoutRoom(where: "true"))) AS p",
                                      context: "finding the rows of \(name) without room") ?? 0)
    }

    /// Batches of whole pages, from the first page to the last the table had when the pass
    /// began (pages added since hold moved rows, with room), each sized to last about
    /// `batchTarget`.
    private func move(pages: Int64, into report: inout RoomReport, progress: ProgressHandler) throws {
        let clock = ContinuousClock()
        var low: Int64 = 0, size = Self.firstBatchPages
        var vacuumedAt: Int64 = 0
        progress(ProgressEvent(.makingRoom, total: report.rowsWithoutRoom))
        while low < pages {
            let high = min(low + size, pages)
            let range = Self.pageRange(low, high)
            let started = clock.now
            // SKIP LOCKED: a row the application holds stays where it is, and the pass never
            // waits for the application, so it can never be part of a deadlock with it.
            let moved = try connection.query("""
                WITH locked AS (
                    SELECT t.ctid AS row FROM \(quoted) AS t
                    WHERE \(range) AND \(Self.keyed) AND (t.ctid::text::point)[0]::bigint IN (SELECT page FROM (\(pagesWithoutRoom(where: range))) AS p)
                    FOR UPDATE OF t SKIP LOCKED)
                UPDATE \(quoted) AS t SET nonce = t.nonce FROM locked WHERE t.ctid = locked.row AND \(range)
                """, context: "moving rows of \(name) to pages with room").affectedRows
            let seconds = (clock.now - started).inSeconds
            report.rowsMoved += moved
            report.batches += 1
            report.longestBatchSeconds = max(report.longestBatchSeconds, seconds)
            progress(ProgressEvent(.makingRoom, done: report.rowsMoved, total: report.rowsWithoutRoom))
            if moved > 0 {
                let scaled = Double(high - low) * Self.batchTarget / max(seconds, 0.001)
                size = min(max(Int64(scaled.rounded()), Self.batchPages.lowerBound), Self.batchPages.upperBound, size * 4)
            }
            low = high
            if low - vacuumedAt >= pages / 4 || low >= pages {
                try vacuum()
                vacuumedAt = low
            }
        }
    }

    /// Marks the emptied pages' space free for moved and new rows. SKIP_LOCKED: a VACUUM already
    /// running (autovacuum) does the same, so this one is not waited for.
    private func vacuum() throws {
        try connection.execute("VACUUM (SKIP_LOCKED) \(quoted)", context: "vacuuming \(name)")
    }
}
