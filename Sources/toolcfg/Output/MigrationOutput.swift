import Foundation
import ToolConfigKit

/// migrate up, down and status as text.
enum MigrationOutput {
    static func run(_ report: MigrationRunReport, console: Console) throws {
        if console.json { return try console.report(report) }
        let verb = report.dryRun ? "would revert" : report.direction == .up ? "applied" : "reverted"
        if report.steps.isEmpty {
            console.note("nothing to do: \(report.direction == .up ? "no pending migration" : "no migration to revert")")
        }
        for step in report.steps {
            console.note("\(verb) \(step.version) \(step.description) (\(step.file)\(step.elapsedSeconds.map { ", " + format($0) } ?? ""))")
            if let sql = step.sql {
                let lines = sql.split(separator: "\n", omittingEmptySubsequences: false).reversed().drop { $0.isEmpty }.reversed()
                console.note(lines.map { "    " + $0 }.joined(separator: "\n"))
            }
        }
        let loss = report.dataLoss ?? []
        for table in loss {
            let verb =
                report.dryRun ? (table.dropped ? "would drop" : "would delete rows of") : (table.dropped ? "dropped" : "deleted rows of")
            console.note("\(verb) \(table.table): \(count(table.rows, "row"))")
        }
        if report.dryRun {
            console.note("dry run: nothing was changed" + (loss.isEmpty ? "" : "; the revert needs --yes"))
        }
        let versions = report.appliedVersions.map(String.init).joined(separator: ", ")
        console.note("ledger \(report.dryRun ? "still" : "now") holds: \(versions.isEmpty ? "no version" : versions)")
    }

    static func render(_ report: MigrationStatusReport) -> String {
        var lines = [
            "database: \(report.database)", "migrations: \(report.migrations)",
            "application release: \(report.applicationRelease.releases) (\(report.applicationRelease.basis))"
        ]
        if let seaORM = report.seaORMMigrations {
            lines.append(
                "ledger: sea-orm (seaql_migrations), \(seaORM.count) migrations, newest \(seaORM.last?.version ?? "none"); "
                    + "toolcfg reads it, and migrate up and down refuse it: the application migrates this database itself")
            lines += seaORM.map {
                "  \($0.version)\($0.appliedAt.map { "  applied \(Date(timeIntervalSince1970: Double($0)).formatted(.iso8601))" } ?? "")"
            }
            return lines.joined(separator: "\n")
        }
        if !report.ledgerExists { lines.append("ledger: none yet (no _sqlx_migrations table)") }
        let header = ["VERSION", "STATE", "DESCRIPTION", "INSTALLED ON", "DOWN"]
        var rows = report.entries.map { entry in
            [
                String(entry.version), entry.state.rawValue, entry.description, entry.installedOn ?? "-",
                entry.file == nil ? "-" : (entry.reversible ? "yes" : "no")
            ]
        }
        rows.insert(header, at: 0)
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(
                row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .trimmingCharacters(in: .whitespaces))
        }
        for entry in report.entries where entry.state == .drifted {
            lines.append("drift in \(entry.version): \(entry.drift ?? "the file's contents changed since it was applied")")
        }
        for entry in report.entries where entry.state == .missingFile {
            lines.append("note: \(entry.version) is in the ledger with no file here (the application's own migration); it is left alone")
        }
        let states: [MigrationStatusReport.State] = [.applied, .pending, .dirty, .drifted, .missingFile]
        lines.append(states.map { "\(report.count($0)) \($0.rawValue)" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    static func format(_ seconds: Double) -> String {
        seconds >= 0.001 ? String(format: "%.1f ms", seconds * 1e3) : String(format: "%.0f µs", seconds * 1e6)
    }
}
