import Foundation
import Testing
@testable import ToolConfigKit
import ToolConfigTestSupport

/// COPY's text format as toolcfg writes and reads it, without a server: the word-at-a-time checks
/// against byte-by-byte ones, and rows read back as they were written.
@Suite("PostgreSQL COPY text")
struct PostgresCopyTextTests {
    @Test("the word-at-a-time escape check agrees with a byte-by-byte one at every position and length")
    func escapeCheckAgrees() {
        for length in 0..<40 {
            for position in -1..<length {
                for special in [UInt8(0x09), 0x0A, 0x0D, 0x5C, 0x08, 0x0B, 0x2C, 0x22, 0x4E, 0x89, 0xDC] {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    if position >= 0 { bytes[position] = special }
                    let expected = bytes.contains { [0x09, 0x0A, 0x0D, 0x5C].contains($0) }
                    #expect(bytes.withUnsafeBufferPointer { PostgresCopyText.needsEscapes($0) } == expected, "\(bytes)")
                }
            }
        }
    }

    @Test("rows written as COPY text read back field by field, NULLs, escapes and empty fields included")
    func rowsReadBack() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab\\\t\n\r\u{1}N,é🔑".unicodeScalars)
        let row = PostgresCopyRow(database: "test")
        var fields: [UnsafeBufferPointer<UInt8>?] = []
        for _ in 0..<2000 {
            let values: [String?] = (0..<Int.random(in: 1...9, using: &generator)).map { _ in
                if Int.random(in: 0..<6, using: &generator) == 0 { return nil }
                var text = ""
                for _ in 0..<Int.random(in: 0...12, using: &generator) {
                    text.unicodeScalars.append(alphabet.randomElement(using: &generator)!)
                }
                return text
            }
            var text = PostgresCopyText()
            for value in values { text.append(value) }
            text.endRow()
            text.bytes.withUnsafeBufferPointer { bytes in
                row.load(bytes)
                row.readFields(into: &fields)
                #expect(fields.map { $0.map { Array($0) } } == values.map { $0.map { Array($0.utf8) } }, "\(values)")
                #expect(row.fieldCount == values.count && (0..<values.count).map { row.text($0) } == values)
            }
        }
    }

    @Test("integers read from a COPY row: an optional minus and digits within Int64, like Int64(text)")
    func integers() {
        for text in [
            "0", "-0", "7", "-9223372036854775808", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "", "-", "+1", "1a", " 1", "12345678901234567890"
        ] {
            let parsed = Array(text.utf8).withUnsafeBufferPointer { PostgresCopyRow.int64($0) }
            #expect(parsed == (text.hasPrefix("+") ? nil : Int64(text)), "\(text)")
        }
    }
}
