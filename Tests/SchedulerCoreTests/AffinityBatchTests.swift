import SchedulerCore
import Testing

/// A leader's affinity records become log entries of bounded size, in decision order.
@Suite struct AffinityBatchTests {
    @Test func batchesKeepOrderAndStayUnderTheirBound() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let records = (0..<Int.random(in: 0...60, using: &generator)).map { index in
                AffinityRecord(instanceID: "engine-\(index % 7)", hashes: (0..<Int.random(in: 0...3_000, using: &generator)).map(UInt64.init))
            }
            let maxBytes = Int.random(in: 1_000...40_000, using: &generator)
            let batches = AffinityRecord.batches(records, maxBytes: maxBytes)
            #expect(Array(batches.joined()) == records)
            for batch in batches {
                #expect(!batch.isEmpty)
                // Over the bound only when one record alone is.
                #expect(batch.reduce(0) { $0 + $1.approximateBytes } <= maxBytes || batch.count == 1)
            }
        }
    }

    @Test func tenLongPromptsMakeSeveralEntries() {
        let records = (0..<10).map { AffinityRecord(instanceID: "e\($0)", hashes: Array(repeating: 7, count: 8_192)) }
        let batches = AffinityRecord.batches(records, maxBytes: 256 << 10)
        #expect(batches.map(\.count) == [3, 3, 3, 1])  // 64 KiB a record: a fourth would pass 256 KiB
    }
}
