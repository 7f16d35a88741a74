import Seeded

/// One Raft member, as a value. Feed it with `tick()`, `step(_:)`, `propose(_:)` and
/// `readIndex(context:)`; collect its output with `ready()`, act on it, then `advance(_:)`.
/// Single-threaded by construction: the shell owns it and calls it from one place.
public struct RaftNode: Sendable {
    public internal(set) var config: RaftConfig
    public var id: NodeID { config.id }

    public internal(set) var term: Term
    /// Whom this node voted for in `term`; 0 for nobody.
    public internal(set) var vote: NodeID
    public internal(set) var role: Role = .follower
    /// The leader this node currently follows (itself when leader); 0 when unknown.
    public internal(set) var leader: NodeID = 0 {
        didSet {
            // Counted per term, so a leader re-elected after losing office counts again.
            if leader != 0, leader != oldValue, (leader, term) != lastLeaderSeen {
                lastLeaderSeen = (leader, term)
                leadersSeen += 1
            }
        }
    }
    /// For metrics: how many times this node has found a leader it did not know (a new
    /// leader, or a new term of one), elections it started, and pre-vote rounds it started.
    public internal(set) var leadersSeen: UInt64 = 0
    public internal(set) var electionsStarted: UInt64 = 0
    public internal(set) var preVotesStarted: UInt64 = 0
    var lastLeaderSeen: (NodeID, Term) = (0, 0)
    /// The membership as of the last applied `membership` entry (or the snapshot, or the
    /// configuration): a change takes effect on each node when that node applies it.
    public internal(set) var membership: Membership
    /// The memberships in force since the snapshot, by the index that set each, so a compaction
    /// records the membership of its own index rather than a later one.
    var membershipHistory: [(index: LogIndex, membership: Membership)]
    /// A leader's last `membership` entry (or its log's end when it took office): no new change is
    /// proposed until this is applied, so at most one change is ever in flight.
    var pendingMembershipIndex: LogIndex = 0
    /// Committed `membership` entries whose bytes did not decode, skipped (the shell reports them).
    public internal(set) var undecodableMembershipEntries = 0

    var log: RaftLog
    /// The latest snapshot this node holds, sent to followers that fell behind compaction.
    var snapshot: Snapshot?
    /// A snapshot received from the leader, to be persisted and restored by the shell.
    var pendingSnapshot: Snapshot?
    /// Chunks of a snapshot being received.
    var incomingSnapshot: (metadata: SnapshotMetadata, data: [UInt8])?
    var persistedHardState: HardState

    var progress: [NodeID: Progress] = [:]
    var votes: [NodeID: Bool] = [:]
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    var rng: SplitMix64
    /// A leadership transfer in progress, and how long it has been going.
    var transferTarget: NodeID = 0

    var readRound: UInt64 = 0
    var pendingReads: [(round: UInt64, index: LogIndex, context: UInt64)] = []
    /// Reads that arrived before this leader committed an entry of its own term (§8).
    var readsAwaitingCommit: [UInt64] = []

    /// Proposals since the last `ready()`; appended to followers in one message each.
    var broadcastPending = false
    var messages: [Message] = []
    var readStates: [ReadState] = []
    var abandonedReads: [UInt64] = []
    /// Set instead of trapping when a testing fault has driven the node into an impossible state.
    public internal(set) var safetyViolation: String?

    public init(config: RaftConfig, persisted: PersistedState = .init()) throws(RaftError) {
        try config.validate()
        var expected = (persisted.snapshot?.metadata.index ?? 0) + 1
        for entry in persisted.entries {
            guard entry.index == expected else {
                throw .invalidRequest("storage returned entry \(entry.index) where \(expected) was expected")
            }
            expected += 1
        }
        self.config = config
        term = persisted.hardState.term
        vote = persisted.hardState.vote
        membership = persisted.snapshot?.metadata.membership ?? config.membership
        membershipHistory = [(persisted.snapshot?.metadata.index ?? 0, membership)]
        log = RaftLog(snapshot: persisted.snapshot?.metadata, entries: persisted.entries,
                      committed: persisted.hardState.commit)
        snapshot = persisted.snapshot
        persistedHardState = persisted.hardState
        if log.lastTerm > term {
            // Entries of a later term survived a crash that the hard state did not (storage writes
            // the hard state first, so this only happens with foreign storage). Adopting the later
            // term is safe: any vote cast in it was never sent, as replies wait for the disk.
            term = log.lastTerm
            vote = 0
        }
        rng = SplitMix64(seed: Self.timerSeed(config.randomSeed, term: persisted.hardState.term))
        resetElectionTimeout()
    }

    // MARK: Inspection (for the shell, metrics and the simulation's checkers)

    public var commitIndex: LogIndex { log.committed }
    public var appliedIndex: LogIndex { log.applied }
    public var firstIndex: LogIndex { log.firstIndex }
    public var lastIndex: LogIndex { log.lastIndex }
    public var lastTerm: Term { log.lastTerm }
    public var snapshotMetadata: SnapshotMetadata? { snapshot?.metadata }
    public var leadershipTransferTarget: NodeID? { transferTarget == 0 ? nil : transferTarget }
    public func entry(at index: LogIndex) -> Entry? { log.entry(at: index) }
    public func term(at index: LogIndex) -> Term? { log.term(at: index) }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }

    /// A leader's view of a follower: (match, next), or nil when not leader.
    public func replicationProgress(of peer: NodeID) -> (match: LogIndex, next: LogIndex)? {
        guard role == .leader, let pr = progress[peer] else { return nil }
        return (pr.match, pr.next)
    }

    /// Leader only: the incarnation `peer`'s replies come from (0: not heard this term).
    public func heardIncarnation(of peer: NodeID) -> UInt64 {
        role == .leader ? progress[peer]?.incarnation ?? 0 : 0
    }

    /// A joining node's shell has learned that this is the group's first start (every peer it
    /// asked had an empty directory too): it may vote before a leader claims it.
    public mutating func allowVotingBeforeClaim() { config.joining = false }

    // MARK: Input

    /// The shell's connection to `peer` has (re)connected: see `askAgainAfterReconnect`.
    public mutating func peerReconnected(_ peer: NodeID) { askAgainAfterReconnect(peer) }

    /// One unit of logical time. Elections and heartbeats are counted in ticks.
    public mutating func tick() {
        if role == .leader { tickLeader() } else { tickElection() }
    }

    /// Appends a command; it is committed once a quorum holds it. Only a leader accepts proposals:
    /// others throw `notLeader` with the leader they know, for the shell to forward to.
    @discardableResult
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> (index: LogIndex, term: Term) {
        guard role == .leader else { throw .notLeader(leader: leader == 0 ? nil : leader) }
        guard transferTarget == 0 else { throw .leadershipTransferInProgress }
        let entry = Entry(index: log.lastIndex + 1, term: term, kind: .command, data: data)
        log.append(entry)
        broadcastPending = true
        return (entry.index, entry.term)
    }

    /// Compacts the log through `index` (applied and durable), keeping `data` (the state machine
    /// at `index`) as the snapshot for followers that fall behind. The shell stores it first.
    public mutating func compact(through index: LogIndex, data: [UInt8]) throws(RaftError) -> Snapshot {
        guard index > log.snapshotIndex, index <= log.applied, let term = log.term(at: index) else {
            throw .invalidRequest("cannot compact through \(index): applied \(log.applied), first \(log.firstIndex)")
        }
        let asOfIndex = membershipHistory.last { $0.index <= index }?.membership ?? membership
        let snap = Snapshot(metadata: SnapshotMetadata(index: index, term: term, membership: asOfIndex), data: data)
        log.compact(through: index)
        membershipHistory = [(index, asOfIndex)] + membershipHistory.filter { $0.index > index }
        snapshot = snap
        return snap
    }

    // MARK: Output

    public var hasReady: Bool {
        broadcastPending || !messages.isEmpty || hardState != persistedHardState
            || !log.unstableEntries.isEmpty || pendingSnapshot != nil || !log.committedUnapplied.isEmpty
            || !readStates.isEmpty || !abandonedReads.isEmpty
    }

    /// Takes what the shell must persist, send and apply; see `Ready` for the order.
    public mutating func ready() -> Ready {
        if broadcastPending {
            broadcastPending = false
            broadcastAppend(allowEmpty: false)
        }
        let hs = hardState
        let ready = Ready(
            hardState: hs == persistedHardState ? nil : hs,
            entries: Array(log.unstableEntries),
            snapshot: pendingSnapshot,
            messages: messages,
            committedEntries: Array(log.committedUnapplied),
            readStates: readStates,
            abandonedReads: abandonedReads)
        messages = []
        readStates = []
        abandonedReads = []
        return ready
    }

    /// Tells the node that `ready` was carried out: persisted, sent and applied.
    public mutating func advance(_ ready: Ready) {
        if let hs = ready.hardState { persistedHardState = hs }
        if let snap = ready.snapshot, pendingSnapshot == snap { pendingSnapshot = nil }
        log.markStable(ready.entries)
        if let last = ready.committedEntries.last { log.markApplied(through: last.index) }
        // A snapshot installed since this Ready was made (its chunk arrived while the Ready was
        // being written) already holds the membership of everything up to its index: applying
        // the Ready's older membership entries now would turn the clock back (raft-sim 9399).
        let appliedMembershipIndex = membershipHistory.last?.index ?? 0
        for entry in ready.committedEntries where entry.kind == .membership && entry.index > appliedMembershipIndex {
            applyMembership(entry)
        }
        if role == .leader {
            // The leader counts itself towards a quorum only for what its own disk holds.
            _ = progress[id]?.acknowledge(through: log.stableIndex)
            if maybeCommit() { broadcastAppend(allowEmpty: true) }
        }
    }

    // MARK: Shared helpers

    mutating func send(to: NodeID, term: Term? = nil, _ body: Message.Body) {
        messages.append(Message(from: id, to: to, term: term ?? self.term, body: body, incarnation: config.incarnation))
    }

    /// The election timer's random stream after a (re)start: a restarted node must not replay the
    /// timeouts it drew before the crash, so the term it restarts in is mixed in. Mixed through a
    /// hash, not XOR-ed in bare: nodes given nearby seeds (raft-sim gives `seed * 31 + id`) would
    /// otherwise collide (`(s + 1) ^ 2 == s + 3`), and two voters drawing the same timeouts can
    /// split every election for ever (raft-sim seed 48596). A fresh start (term 0) keeps the seed.
    static func timerSeed(_ seed: UInt64, term: Term) -> UInt64 {
        guard term > 0 else { return seed }
        var mix = SplitMix64(seed: term)
        return seed ^ mix.next()
    }

    mutating func resetElectionTimeout() {
        let span = UInt64(config.electionTicks)
        randomizedElectionTimeout = config.electionTicks + Int(rng.next() % span)
    }

    var peers: [NodeID] { membership.members.filter { $0 != id }.sorted() }
    var isPromotable: Bool { mayVote(id, incarnation: config.incarnation) && mayVoteItself }

    /// False for a joining node until a membership claims its own incarnation.
    var mayVoteItself: Bool {
        !config.joining || config.testingFaults.ignoreIncarnations || membership.incarnations[id] == config.incarnation
    }

    /// Whether `node`'s vote, given as `incarnation`, counts here (the identity guard, which a
    /// simulation's bug switch turns off to prove its checkers notice).
    func mayVote(_ node: NodeID, incarnation: UInt64) -> Bool {
        membership.voters.contains(node) && isNotDisowned(node, incarnation: incarnation)
    }

    /// False when the membership has claimed `node` as another incarnation: a wiped disk, or a
    /// copy, answering under a claimed id.
    func isNotDisowned(_ node: NodeID, incarnation: UInt64) -> Bool {
        config.testingFaults.ignoreIncarnations || membership.incarnations[node].map { $0 == incarnation } ?? true
    }

    /// Records an impossible state. With a testing fault switched on it is reported to the
    /// simulation; otherwise it is a bug in Raft itself and the process stops before doing harm.
    mutating func violation(_ what: String) {
        if config.testingFaults != TestingFaults() {
            if safetyViolation == nil { safetyViolation = what }
        } else {
            preconditionFailure("raft safety: \(what)")
        }
    }
}
