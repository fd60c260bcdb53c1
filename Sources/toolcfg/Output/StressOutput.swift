import Foundation
import ToolConfigKit

/// stress's report as text.
enum StressOutput {
    static func describe(_ report: StressTest.Report, console: Console) {
        func ms(_ seconds: Double) -> String { String(format: "%8.3f", seconds * 1e3) }
        console.note(
            "\(report.writers) writers (\(report.mode)) x \(report.operationsPerWriter) operations on \(report.pairs) pairs, "
                + "seed \(report.seed), \(report.write.rawValue) upsert"
        )
        console.note(
            String(
                format: "%d operations in %.2f s: %.0f ops/s; %d upserts, %d reads, %d deletes; %d writes committed, %d rows at the end",
                report.operations, report.elapsedSeconds, report.operationsPerSecond, report.upserts, report.reads,
                report.deletes, report.committedWrites, report.finalRows))
        console.note("latency (ms)           p50      p99      max")
        for (name, latency) in [
            ("upsert", report.latency.upsert), ("read", report.latency.read), ("delete", report.latency.delete),
            ("lock acquisition", report.latency.lockAcquisition)
        ] {
            console.note(
                "  \(name.padding(toLength: 16, withPad: " ", startingAt: 0))\(ms(latency.p50Seconds)) \(ms(latency.p99Seconds)) "
                    + "\(ms(latency.maxSeconds))"
            )
        }
        console.note("lock waits (\(report.engine.pairWriteLock) over 1 ms): \(report.lockWaits)")
        let counts = report.invariants
        console.note(
            "duplicate pairs \(counts.duplicatePairs), id changes \(counts.idChanges), lost updates \(counts.lostUpdates), "
                + "writer errors \(counts.writerErrors) (\(report.busyErrors) busy), integrity failures \(counts.integrityFailures)"
        )
        console.note("integrity check: \(report.integrityCheck)")
        for problem in report.problems { console.note("  \(problem)") }
        if report.ok { console.note("ok") }
    }
}
