/// Affinity the leader has learned but may not yet see committed: the chains it assigned in the
/// current batch interval and in the one before (whose batch is on its way through the log).
/// Without it a prompt repeated within a batch interval (a burst of identical requests, a quick
/// follow-up turn) would not find the instance that just took it. `rotate()` at every batch
/// drops the older generation, which by then has been committed for a whole interval. Small
/// (two intervals of decisions), so plain dictionaries serve.
public struct AffinityOverlay: Sendable {
    private var current: [UInt64: [String]] = [:]
    private var previous: [UInt64: [String]] = [:]

    public init() {}

    public var isEmpty: Bool { current.isEmpty && previous.isEmpty }

    public mutating func record(_ chain: [UInt64], on instance: String) {
        for hash in chain where !(current[hash]?.contains(instance) ?? false) {
            current[hash, default: []].append(instance)
        }
    }

    /// Starts a new interval; forgets the one before the last.
    public mutating func rotate() {
        previous = current
        current = [:]
    }

    /// For each instance in the overlay: how many leading chunks of `chain` it holds. Hashes are
    /// chained, so holding chunk k means holding the whole prefix up to k.
    public func cachedChunks(for chain: [UInt64]) -> [String: Int] {
        guard !isEmpty else { return [:] }
        var lengths: [String: Int] = [:]
        for (position, hash) in chain.enumerated() {
            for instance in current[hash] ?? [] { lengths[instance] = position + 1 }
            for instance in previous[hash] ?? [] { lengths[instance] = position + 1 }
        }
        return lengths
    }
}
