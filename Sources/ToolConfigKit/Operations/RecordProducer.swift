/// Reads and validates records on its own thread and hands them over in batches. The reader and
/// digest belong to this thread until `run` returns (the channel's `finish` orders that before
/// the consumer reads `trailer` and `digest`).
final class RecordProducer: @unchecked Sendable {
    struct Batch: Sendable {
        var items: [ImportState.Item] = []
        /// Validation errors of this batch's records, in file order.
        var errors: [SnapshotError] = []
        /// Records read, valid or not.
        var count = 0
        /// What ended reading early: a syntax error (nothing after it can be trusted) or an I/O error.
        var endError: (any Error & Sendable)?
    }

    private let reader: any SnapshotReader
    private let decoder: RecordDecoder
    /// Only a toolcfg snapshot (one with a header) has a trailer to check the digest against.
    let digest: SnapshotDigest?

    init(reader: any SnapshotReader, decoder: RecordDecoder) {
        self.reader = reader
        self.decoder = decoder
        digest = reader.header == nil ? nil : SnapshotDigest()
    }

    var trailer: SnapshotTrailer? { reader.trailer }

    func run(into channel: BatchChannel<Batch>, batchSize: Int) {
        defer { channel.finish() }
        var done = false
        while !done {
            var batch = Batch()
            batch.items.reserveCapacity(batchSize)
            while batch.count < batchSize {
                let raw: RawRecord
                do {
                    guard let next = try reader.next() else { done = true; break }
                    raw = next
                } catch {
                    // Readers throw only SnapshotError and SnapshotIOError, both Sendable.
                    batch.endError = (error as? any ToolcfgError) ?? SnapshotIOError(path: reader.fileName, reason: "\(error)", missing: false)
                    done = true
                    break
                }
                batch.count += 1
                do {
                    let record = try decoder.decode(raw)
                    digest?.add(record)
                    batch.items.append(ImportState.Item(record: record, location: raw.location))
                } catch {
                    batch.errors.append(error)
                }
            }
            if !channel.put(batch) { return }
        }
    }
}
