import Foundation
import Testing
import ToolConfigKit
@testable import toolcfg

/// The progress line on a terminal: its text as a pure function of an event and the time spent,
/// and the renderer's promise that each phase's line is ended before anything else is printed.
@Suite("Progress line")
struct ProgressLineTests {
    static let mib = 1 << 20

    @Test(
        "the line shows done, total, percent, rate and ETA while running; count, time and rate once done",
        arguments: [
            (
                ProgressEvent(.writing, done: 25_000, total: 100_000), 2.0, false,
                "writing: 25,000 / 100,000 rows (25%), 12,500 rows/s, ETA 6.0 s"
            ),
            (
                ProgressEvent(.reading, done: 3 * mib, total: 12 * mib, unit: .bytes), 1.5, false,
                "reading: 3.0 MiB / 12.0 MiB (25%), 2.0 MiB/s, ETA 4.5 s"
            ),
            (ProgressEvent(.reading, done: 1536, unit: .bytes), 1.0, false, "reading: 1.5 KiB, 1.5 KiB/s"),
            (ProgressEvent(.backup), 0.0, false, "backup..."),
            (ProgressEvent(.derivingKeys, total: 1000), 0.0, false, "deriving keys: 0 / 1,000 rows (0%)"),
            (
                ProgressEvent(.derivingKeys, done: 1000, total: 1_000_000), 10.0, false,
                "deriving keys: 1,000 / 1,000,000 rows (0%), 100 rows/s, ETA 2:46:30"
            ),
            (
                ProgressEvent(.checkingKeys, done: 600, total: 1000), 90.0, false,
                "checking keys: 600 / 1,000 rows (60%), 7 rows/s, ETA 1:00"
            ),
            (ProgressEvent(.writing, total: 0), 0.0, false, "writing: 0 / 0 rows (100%)"),
            (ProgressEvent(.writing, done: 100_000, total: 100_000), 8.0, true, "writing: 100,000 rows in 8.0 s, 12,500 rows/s"),
            (ProgressEvent(.backup), 0.4, true, "backup: done in 0.4 s"),
            (ProgressEvent(.rebuildingIndexes), 75.0, true, "rebuilding indexes: done in 1:15"),
            (ProgressEvent(.verifying, done: 512, unit: .bytes), 2.0, true, "verifying: 512 B in 2.0 s, 256 B/s")
        ] as [(ProgressEvent, Double, Bool, String)])
    func format(_ event: ProgressEvent, elapsed: Double, finished: Bool, expected: String) {
        #expect(ProgressLine.format(event, elapsed: elapsed, finished: finished) == expected)
    }

    @Test("on any counts, the numbers shown are the event's: done and total grouped, percent floored, ETA from the rate")
    func formatProperty() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let total = Int.random(in: 1...50_000_000, using: &generator)
            let done = Int.random(in: 1...total, using: &generator)
            let elapsed = Double.random(in: 0.1...10_000, using: &generator)
            let line = ProgressLine.format(ProgressEvent(.writing, done: done, total: total), elapsed: elapsed)
            #expect(
                line.hasPrefix("writing: \(ProgressLine.grouped(done)) / \(ProgressLine.grouped(total)) rows (\(done * 100 / total)%)"),
                "\(line)")
            let rate = Double(done) / elapsed
            #expect(line.contains(", \(ProgressLine.grouped(Int(rate.rounded()))) rows/s"), "\(line)")
            #expect(line.hasSuffix("ETA " + ProgressLine.duration(Double(total - done) / rate)), "\(line)")
            #expect(ProgressLine.grouped(done).filter(\.isNumber) == String(done))
        }
    }

    @Test(
        "durations read as seconds, then m:ss, then h:mm:ss",
        arguments: [
            (0.04, "0.0 s"), (59.94, "59.9 s"), (60, "1:00"), (61.4, "1:01"), (3599.4, "59:59"), (3600, "1:00:00"), (86_399, "23:59:59")
        ] as [(Double, String)])
    func durations(_ seconds: Double, expected: String) {
        #expect(ProgressLine.duration(seconds) == expected)
    }

    @Test("each phase's line is finished and ended before the next phase or the caller prints")
    func renderer() {
        var text = ""
        let renderer = ProgressRenderer(columns: 200) { text += $0 }
        renderer.show(ProgressEvent(.backup))
        renderer.show(ProgressEvent(.derivingKeys, total: 4))
        renderer.show(ProgressEvent(.derivingKeys, done: 4, total: 4))
        renderer.finish()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines.last == "", "\(text.debugDescription)")
        // Each line's last redraw (after its last carriage return) is the phase's final state.
        let finals = lines.dropLast().map { $0.split(separator: "\r").last.map { $0.replacingOccurrences(of: "\u{1B}[K", with: "") } ?? "" }
        #expect(finals.first?.hasPrefix("backup: done in ") == true, "\(finals)")
        #expect(finals.last?.hasPrefix("deriving keys: 4 rows in ") == true, "\(finals)")

        // A failed operation leaves its line as it was, ended.
        text = ""
        let failing = ProgressRenderer(columns: 200) { text += $0 }
        failing.show(ProgressEvent(.writing, done: 1, total: 10))
        failing.abandon()
        #expect(text.hasSuffix("writing: 1 / 10 rows (10%)\u{1B}[K\n"), "\(text.debugDescription)")

        // Nothing shown, nothing printed.
        text = ""
        ProgressRenderer(columns: 200) { text += $0 }.finish()
        #expect(text.isEmpty)
    }

    @Test("a line never wraps: it is cut to the terminal's width")
    func width() {
        var text = ""
        let renderer = ProgressRenderer(columns: 20) { text += $0 }
        renderer.show(ProgressEvent(.derivingKeys, done: 1, total: 1_000_000))
        let line = text.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\u{1B}[K", with: "")
        #expect(line.count == 19, "\(line)")
    }
}
