import Raft

/// A simulated server: a Raft node, its disk, its state machine and its waiting clients.
struct SimNode {
    let id: NodeID
    var config: RaftConfig
    /// nil while the node is down.
    var core: RaftNode?
    /// What survives a crash.
    var disk = MemoryStorage()
    /// A `Ready` whose disk write has started but is not yet durable.
    var writing: Ready?
    /// With the ack-before-sync bug, the writing Ready's messages already left.
    var writingMessagesSent = false
    var writeGeneration = 0
    /// Counts restarts (so a dead incarnation's timers are ignored); not Raft's incarnation,
    /// which is `config.incarnation` and changes only when the disk is wiped.
    var incarnation = 0
    /// The disk was wiped and the operator has not yet replaced the node.
    var awaitingReplacement = false
    /// The disk as it was when last wiped: what it held was durable there, and acknowledged
    /// from there, even if it is gone now.
    var wipedDisk: MemoryStorage?
    var stateMachine = KVStateMachine()
    /// Puts this node proposed as leader: log index -> (term, client, op).
    var proposals: [LogIndex: (term: Term, client: Int, opID: UInt64)] = [:]
    /// Reads waiting for a read index: context (op id) -> (client, key).
    var reads: [UInt64: (client: Int, key: UInt8)] = [:]
    /// Reads with a read index, waiting for the state machine to catch up.
    var readsAwaitingApply: [(index: LogIndex, client: Int, opID: UInt64, key: UInt8)] = []
    /// For the monotonicity checks, reset at each restart.
    var lastSeenTerm: Term = 0
    var lastSeenCommit: LogIndex = 0
    /// Ledger indexes already compared with this node's log.
    var checkedThrough: LogIndex = 0

    var isUp: Bool { core != nil }

    init(id: NodeID, config: RaftConfig) {
        self.id = id
        self.config = config
    }

    /// Loses everything not on disk. A write in progress may leave a prefix behind, in the
    /// order storage writes: snapshot, hard state, entries.
    mutating func crash(tornPrefix: Int?) {
        if let ready = writing, let keep = tornPrefix {
            var remaining = keep
            if let snap = ready.snapshot, remaining > 0 { disk.install(snap); remaining -= 1 }
            if let hs = ready.hardState, remaining > 0 {
                disk.persist(hardState: hs, entries: [], snapshot: nil)
                remaining -= 1
            }
            if remaining > 0 { disk.append(Array(ready.entries.prefix(remaining))) }
        }
        core = nil
        writing = nil
        writingMessagesSent = false
        writeGeneration += 1
        proposals = [:]
        reads = [:]
        readsAwaitingApply = []
    }

    /// Loses the disk too: the node comes back empty, as a new incarnation.
    mutating func wipe(newIncarnation: UInt64) {
        crash(tornPrefix: nil)
        wipedDisk = disk
        disk = MemoryStorage()
        config.incarnation = newIncarnation
        // The shell would find the others holding data: it joins, and waits to be claimed.
        config.joining = true
        awaitingReplacement = true
    }

    mutating func restart(forgetVote: Bool) throws {
        var persisted = disk.load()
        if forgetVote { persisted.hardState.vote = 0 }
        core = try RaftNode(config: config, persisted: persisted)
        incarnation += 1
        stateMachine = KVStateMachine()
        if let snap = persisted.snapshot, let restored = KVStateMachine(serialized: snap.data) {
            stateMachine = restored
        }
        lastSeenTerm = core!.term
        lastSeenCommit = core!.commitIndex
        checkedThrough = 0
    }
}
