/// Where a node's durable state lives. The shell calls it while carrying out a `Ready`; every
/// method returns only once what it wrote is durable (fsynced for the file storage).
public protocol RaftStorage {
    /// Everything persisted so far, for building the node at start-up.
    func load() throws -> PersistedState
    /// Writes a `Ready`'s durable part: an installed snapshot (replacing the whole log), then the
    /// hard state, then the entries (which replace any stored entries from their first index on).
    mutating func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws
    /// Stores a snapshot the node took by compaction; entries after it are kept.
    mutating func saveCompactionSnapshot(_ snapshot: Snapshot) throws
}

/// Storage in memory, for tests and the simulation: durable for as long as the value lives.
public struct MemoryStorage: RaftStorage, Sendable {
    public private(set) var state = PersistedState()

    public init(_ state: PersistedState = .init()) { self.state = state }

    public func load() -> PersistedState { state }

    public mutating func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) {
        if let snapshot { install(snapshot) }
        if let hardState { state.hardState = hardState }
        append(entries)
    }

    public mutating func saveCompactionSnapshot(_ snapshot: Snapshot) {
        guard snapshot.metadata.index > (state.snapshot?.metadata.index ?? 0) else { return }
        state.entries.removeAll { $0.index <= snapshot.metadata.index }
        state.snapshot = snapshot
    }

    /// An installed snapshot replaces the log: what we held may conflict with it.
    public mutating func install(_ snapshot: Snapshot) {
        state.snapshot = snapshot
        state.entries = []
    }

    public mutating func append(_ entries: [Entry]) {
        guard let first = entries.first else { return }
        state.entries.removeAll { $0.index >= first.index }
        state.entries.append(contentsOf: entries)
    }
}
