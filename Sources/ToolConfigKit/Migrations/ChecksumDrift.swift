/// Explains a checksum mismatch when the file differs from what was applied only in its byte
/// order mark, line endings or trailing newlines: the most common false drift (an editor or a
/// git autocrlf setting rewrote the file). Returns nil for a real change of contents.
enum ChecksumDrift {
    struct Shape: Equatable {
        var byteOrderMark: Bool
        var crlf: Bool
        var trailingNewlines: Int
    }

    static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]

    static func shape(of bytes: [UInt8]) -> (Shape, body: [UInt8]) {
        var body = bytes
        let hasBOM = body.starts(with: bom)
        if hasBOM { body.removeFirst(3) }
        let crlf = body.count >= 2 && zip(body, body.dropFirst()).contains { $0 == 0x0D && $1 == 0x0A }
        // Normalise to LF, then count and remove trailing newlines.
        var lf: [UInt8] = []
        lf.reserveCapacity(body.count)
        var index = 0
        while index < body.count {
            if body[index] == 0x0D, index + 1 < body.count, body[index + 1] == 0x0A { index += 1; continue }
            lf.append(body[index])
            index += 1
        }
        var trailing = 0
        while lf.last == 0x0A { lf.removeLast(); trailing += 1 }
        return (Shape(byteOrderMark: hasBOM, crlf: crlf, trailingNewlines: trailing), lf)
    }

    static func render(_ body: [UInt8], _ shape: Shape) -> [UInt8] {
        var out = shape.byteOrderMark ? bom : []
        let newline: [UInt8] = shape.crlf ? [0x0D, 0x0A] : [0x0A]
        for byte in body {
            if byte == 0x0A { out += newline } else { out.append(byte) }
        }
        for _ in 0..<shape.trailingNewlines { out += newline }
        return out
    }

    static func explain(file: [UInt8], recordedChecksum: [UInt8]) -> String? {
        let (actual, body) = shape(of: file)
        for bom in [actual.byteOrderMark, !actual.byteOrderMark] {
            for crlf in [actual.crlf, !actual.crlf] {
                for trailing in Set([actual.trailingNewlines, 0, 1, 2]).sorted() {
                    let candidate = Shape(byteOrderMark: bom, crlf: crlf, trailingNewlines: trailing)
                    guard candidate != actual, Digest.sha384(render(body, candidate)) == recordedChecksum else { continue }
                    var differences: [String] = []
                    if bom != actual.byteOrderMark {
                        differences.append(
                            bom
                                ? "the applied file began with a UTF-8 byte order mark, this one does not"
                                : "this file begins with a UTF-8 byte order mark, the applied one did not")
                    }
                    if crlf != actual.crlf {
                        differences.append(
                            crlf
                                ? "the applied file had CRLF line endings, this one has LF"
                                : "this file has CRLF line endings, the applied one had LF")
                    }
                    if trailing != actual.trailingNewlines {
                        differences.append("the applied file ended with \(trailing) newline(s), this one with \(actual.trailingNewlines)")
                    }
                    return "only the byte order mark, line endings or trailing newlines differ, not the SQL ("
                        + differences.joined(separator: "; ") + ")"
                }
            }
        }
        return nil
    }
}
