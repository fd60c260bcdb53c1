import Foundation
import ToolConfigKit

/// The progress line's text, a pure function of an event and the time since its phase began:
/// done (of total, with percent), rate and ETA while running; count, time and rate once done.
enum ProgressLine {
    static func format(_ event: ProgressEvent, elapsed: Double, finished: Bool = false) -> String {
        let rate = elapsed >= 0.05 && event.done > 0 ? Double(event.done) / elapsed : nil
        let rateText = rate.map { "\(quantity(Int($0.rounded()), event.unit))/s" }
        if finished {
            let count = event.done > 0 || event.total != nil ? "\(quantity(event.done, event.unit)) in " : "done in "
            return "\(event.phase.rawValue): \(count)\(duration(elapsed))" + (rateText.map { ", \($0)" } ?? "")
        }
        var parts: [String] = []
        if let total = event.total {
            let percent = total > 0 ? min(100, event.done * 100 / total) : 100
            parts.append("\(quantity(event.done, event.unit, of: total)) (\(percent)%)")
        } else if event.done > 0 {
            parts.append(quantity(event.done, event.unit))
        }
        if let rateText { parts.append(rateText) }
        if let total = event.total, let rate, rate > 0 {
            parts.append("ETA \(duration(Double(max(0, total - event.done)) / rate))")
        }
        return parts.isEmpty ? "\(event.phase.rawValue)..." : "\(event.phase.rawValue): " + parts.joined(separator: ", ")
    }

    /// "1,234 rows", "1,234 / 5,000 rows", "1.5 MiB", "1.5 MiB / 40.0 MiB".
    static func quantity(_ value: Int, _ unit: ProgressEvent.Unit, of total: Int? = nil) -> String {
        switch unit {
        case .rows: total.map { "\(grouped(value)) / \(grouped($0)) rows" } ?? "\(grouped(value)) rows"
        case .bytes: total.map { "\(bytes(value)) / \(bytes($0))" } ?? bytes(value)
        }
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { text.append(",") }
            text.append(digit)
        }
        return value < 0 ? "-" + text : text
    }

    static func bytes(_ value: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value), unit = 0
        while amount >= 1024, unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit])
    }

    /// "0.4 s" under a minute, then "2:05", then "1:02:05".
    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        let (hours, minutes, rest) = (whole / 3600, whole / 60 % 60, whole % 60)
        return hours > 0 ? String(format: "%d:%02d:%02d", hours, minutes, rest) : String(format: "%d:%02d", minutes, rest)
    }
}

/// Draws progress on standard error, a terminal: one line per phase, redrawn in place at most
/// ten times a second; a phase's line is completed and ended when the next phase starts or the
/// operation returns, so a summary or an error starts on a line of its own.
final class ProgressRenderer {
    private let columns: Int
    private let write: (String) -> Void
    private var current: ProgressEvent?
    private var phaseStarted = ContinuousClock.now
    private var lastDrawn: ContinuousClock.Instant?

    init(columns: Int, write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.columns = columns
        self.write = write
    }

    func show(_ event: ProgressEvent) {
        let now = ContinuousClock.now
        if let current, current.phase != event.phase {
            draw(current, finished: true, now: now)
            end()
        }
        if current == nil || current?.phase != event.phase {
            phaseStarted = now
            lastDrawn = nil
        }
        current = event
        if let lastDrawn, now - lastDrawn < .milliseconds(100), event.done != event.total { return }
        draw(event, finished: false, now: now)
    }

    /// The operation returned: the last phase's line shows its totals and is ended.
    func finish() {
        guard let current else { return }
        draw(current, finished: true, now: .now)
        end()
    }

    /// The operation failed: the line stays as it was, ended, before the error.
    func abandon() {
        if current != nil { end() }
    }

    private func end() {
        write("\n")
        current = nil
    }

    private func draw(_ event: ProgressEvent, finished: Bool, now: ContinuousClock.Instant) {
        let elapsed = now - phaseStarted
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let line = String(ProgressLine.format(event, elapsed: seconds, finished: finished).prefix(max(1, columns - 1)))
        // Carriage return, the line, then erase what a longer earlier line left.
        write("\r\(line)\u{1B}[K")
        lastDrawn = now
    }
}
