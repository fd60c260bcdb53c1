/// Reads and validates records on its own thread and hands them over in batches. The reader and
/// digest belong to this thread until `run` returns (the channel's `finish` orders that before
/// the consumer reads `trailer` and `digest`).
final class RecordProducer: @unchecked Sendable {
    struct Batch: Sendable {
        var items: [ImportItem] = []
        /// Validation errors of this batch's records, in file order.
        var errors: [SnapshotError] = []
        /// Records read, valid or not.
        var count = 0
        /// What ended reading early: a syntax error (nothing after it can be trusted) or an I/O error.
        var endError: (any Error & Sendable)?
        /// How far into the input the reader was after this batch, for progress.
        var bytesConsumed = 0
    }

    private let reader: any SnapshotReader
    private let decoder: RecordDecoder
    /// Only a toolcfg snapshot (one with a header) has a trailer to check the digest against.
    let digest: SnapshotDigest?

    /// Pairs seen so far, when importing into an empty table (nil otherwise).
    private var seenPairs: PairFilter?

    init(reader: any SnapshotReader, decoder: RecordDecoder, tracksNewPairs: Bool) {
        self.reader = reader
        self.decoder = decoder
        digest = reader.header == nil ? nil : SnapshotDigest()
        seenPairs = tracksNewPairs ? PairFilter() : nil
    }

    var trailer: SnapshotTrailer? { reader.trailer }

    /// Batches never hold the same (user_id, tool_id) twice: a repeat starts the next batch, so
    /// the writer always sees an earlier record of a pair already written. Pair hashes are
    /// computed here, off the writer's thread.
    func run(into channel: BatchChannel<Batch>, batchSize: Int) {
        defer {
            seenPairs = nil  // 8 MiB the index rebuilds after the last row can use instead
            channel.finish()
        }
        var done = false
        var carried: ImportItem?
        while !done {
            var batch = Batch()
            batch.items.reserveCapacity(batchSize)
            var pairs = Set<UInt64>(minimumCapacity: batchSize)
            if let carried {
                pairs.insert(carried.pairHash)
                batch.items.append(carried)
                batch.count = 1
            }
            carried = nil
            while batch.count < batchSize {
                let raw: RawRecord
                do {
                    guard let next = try reader.next() else { done = true; break }
                    raw = next
                } catch {
                    // Readers throw only SnapshotError and SnapshotIOError, both Sendable.
                    batch.endError =
                        (error as? any ToolcfgError) ?? SnapshotIOError(path: reader.fileName, reason: "\(error)", missing: false)
                    done = true
                    break
                }
                batch.count += 1
                do {
                    let record = try decoder.decode(raw)
                    digest?.add(record)
                    var item = ImportItem(record: record, location: raw.location, pairHash: ImportState.pairHash(record))
                    item.certainlyNew = seenPairs?.insert(item.pairHash) ?? false
                    guard pairs.insert(item.pairHash).inserted else {
                        carried = item
                        break
                    }
                    batch.items.append(item)
                } catch {
                    batch.errors.append(error)
                }
            }
            // A carried record is counted in the batch that holds it.
            if carried != nil { batch.count -= 1 }
            batch.bytesConsumed = reader.source.bytesConsumed
            if !channel.put(batch) { return }
        }
    }
}
