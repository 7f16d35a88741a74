/// What the shell must do after feeding the node, in this order:
/// 1. make `snapshot`, `entries` and `hardState` durable (storage; `entries` overwrite from their
///    first index on),
/// 2. send `messages` (they may promise what step 1 made durable: votes, acknowledgements),
/// 3. restore the state machine from `snapshot` if any, then apply `committedEntries`,
/// 4. answer `readStates` once the state machine has applied up to their index,
/// 5. call `advance(_:)` with this value before asking for the next one.
public struct Ready: Sendable {
    public var hardState: HardState?
    public var entries: [Entry]
    public var snapshot: Snapshot?
    public var messages: [Message]
    public var committedEntries: [Entry]
    public var readStates: [ReadState]
    /// Read requests this node accepted as leader but can no longer answer (it lost leadership).
    public var abandonedReads: [UInt64]

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty && abandonedReads.isEmpty
    }

    /// True if storage must be written (and synced) before the messages go out.
    public var needsPersisting: Bool { hardState != nil || !entries.isEmpty || snapshot != nil }
}

/// A linearizable read may be served once the state machine has applied `index`.
public struct ReadState: Sendable, Hashable {
    public var index: LogIndex
    /// The caller's id for the read, from `readIndex(context:)`.
    public var context: UInt64

    public init(index: LogIndex, context: UInt64) {
        self.index = index
        self.context = context
    }
}

/// What storage gives back at start-up.
public struct PersistedState: Sendable, Hashable {
    public var hardState: HardState
    public var snapshot: Snapshot?
    /// Entries after the snapshot, consecutive.
    public var entries: [Entry]

    public init(hardState: HardState = .init(), snapshot: Snapshot? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }
}
