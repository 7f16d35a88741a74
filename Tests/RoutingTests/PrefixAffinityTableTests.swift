import Routing
import Testing

@Suite struct PrefixAffinityTableTests {
    @Test func longestLeadingMatchPerInstance() {
        var table = PrefixAffinityTable()
        table.record([1, 2, 3, 4], on: "a")
        table.record([1, 2, 9], on: "b")
        table.record([7, 8], on: "c")
        #expect(table.matches(for: [1, 2, 3, 4, 5]) == ["a": 4, "b": 2])
        #expect(table.matches(for: [1, 2, 9]) == ["a": 2, "b": 3])
        #expect(table.matches(for: [99, 2, 3]).isEmpty, "a chain matches from its first chunk only")
        #expect(table.matches(for: []).isEmpty)
    }

    @Test func evictionTakesTheOldestChainsAndTailsFirst() {
        var table = PrefixAffinityTable()
        table.setCapacity(6, for: "a")
        table.record([1, 2, 3], on: "a")
        table.record([10, 11, 12], on: "a")
        #expect(table.entryCount(of: "a") == 6)
        // Two new hashes push out the two oldest: the tail of the first chain.
        table.record([20, 21], on: "a")
        #expect(table.matches(for: [1, 2, 3]) == ["a": 1])
        #expect(table.matches(for: [10, 11, 12]) == ["a": 3])
        // Touching a chain again makes it newest.
        table.record([1], on: "a")
        table.record([30, 31], on: "a")
        #expect(table.matches(for: [1]) == ["a": 1])
        #expect(table.matches(for: [10, 11, 12]) == ["a": 1])
        #expect(table.entryCount(of: "a") == 6)
    }

    @Test func shrinkingCapacityEvictsAndRemoveForgets() {
        var table = PrefixAffinityTable()
        table.record(Array(1...100), on: "a")
        table.record(Array(1...10), on: "b")
        table.setCapacity(10, for: "a")
        #expect(table.entryCount(of: "a") == 10)
        #expect(table.matches(for: Array(1...100))["a"] == 10)
        table.remove("a")
        #expect(table.matches(for: Array(1...100)) == ["b": 10])
        #expect(table.instanceIDs == ["b"])
        table.record([5], on: "c")
        #expect(table.instanceIDs == ["b", "c"])
    }

    @Test func rebuildingFromEntriesGivesAnEqualTable() {
        var table = PrefixAffinityTable()
        table.setCapacity(50, for: "a")
        for base in stride(from: UInt64(0), to: 400, by: 10) { table.record(Array(base..<(base + 7)), on: base % 20 == 0 ? "a" : "b") }
        let copy = PrefixAffinityTable(entries: table.entries)
        #expect(copy == table)
        #expect(copy.matches(for: Array(380..<387)) == table.matches(for: Array(380..<387)))
        var other = copy
        other.record([999], on: "a")
        #expect(other != table)
    }
}
