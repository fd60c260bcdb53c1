import ToolConfigKit

/// migrate verify's report as text.
enum ReversibilityOutput {
    static func describe(_ report: ReversibilityCheck.Report, console: Console) {
        for database in report.databases {
            console.note("\(database.ok ? "ok  " : "FAIL") \(database.database)")
            if let error = database.error { console.note("     \(error)") }
            for step in database.steps {
                console.note("     \(step.ok ? "ok  " : "FAIL") \(step.version) \(step.description) (\(step.cycle))")
                for failure in step.failures { console.note("          \(failure)") }
                for note in step.notes { console.note("          note: \(note)") }
            }
        }
        console.note("\(report.databases.filter(\.ok).count) of \(report.databases.count) database(s) passed")
    }
}
