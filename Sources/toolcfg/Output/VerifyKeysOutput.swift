import ToolConfigKit

/// verify-keys' report as text.
enum VerifyKeysOutput {
    static func describe(_ report: KeyVerifier.Report, console: Console) {
        for group in report.groups {
            var line =
                "\(group.table) (\(group.columns[0])): \(group.rows) rows, \(group.underMasterKey) under \(report.masterKeyFingerprint)"
            if let new = report.newMasterKeyFingerprint { line += ", \(group.underNewMasterKey) under \(new)" }
            line +=
                ", \(group.empty) empty, \(group.underNeither) under no given key, \(group.malformed) malformed; \(group.v1) v1, "
                + "\(group.v2) v2"
            console.note(line)
        }
        if let file = report.secretsFile {
            let under = ["master_key": report.masterKeyFingerprint, "new_master_key": report.newMasterKeyFingerprint ?? ""][file.under]
            console.note("secrets file \(file.file): " + (under.map { "under \($0)" } ?? "under no given key"))
        }
        console.note("reused salts: \(report.reusedSalts), reused nonces: \(report.reusedNonces)")
        console.note("application release: \(report.applicationRelease.releases) (\(report.applicationRelease.basis))")
        for problem in report.problems {
            console.note("  \(problem.table) row id \(problem.id ?? String(problem.rowID)), \(problem.column): \(problem.problem)")
        }
        let problems = report.groups.reduce(0) { $0 + $1.underNeither + $1.malformed }
        if problems > report.problems.count { console.note(more(problems - report.problems.count)) }
        let legacy = report.groups.reduce(0) { $0 + $1.legacy }
        let v2 = report.groups.reduce(0) { $0 + $1.v2 }
        if legacy > 0 && v2 == 0 && report.applicationRelease.ledger == "sea-orm" {
            console.note(
                "\(legacy) value(s) in scheme v1 outside tenants: before the application moves to v0.0.59, which refuses them, "
                    + "rotate --scheme v2 (the same key as old and new) upgrades them in place")
        } else if legacy > 0 && v2 > 0 {
            console.note(
                "\(legacy) legacy (v1) value(s) outside tenants: an application of v0.0.59 or later refuses them (HTTP 422); "
                    + "rotate --scheme v2, with the same key as old and new, upgrades them in place:")
            for value in report.legacyValues {
                console.note("  \(value.table) row id \(value.id ?? String(value.rowID)), \(value.column)")
            }
            if legacy > report.legacyValues.count { console.note(more(legacy - report.legacyValues.count)) }
        }
        if report.ok { console.note("ok") }
    }

    static func more(_ count: Int) -> String {
        "  and \(count) more (--list 0 names every one; --json has the same list)"
    }
}
