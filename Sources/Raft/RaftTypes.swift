/// The Raft consensus core. Pure: it never touches sockets, files or clocks. Input is messages,
/// ticks and proposals; output is a `Ready`: state to persist, messages to send once that state is
/// durable, and committed entries to apply. Docs/raft.md describes the design.

/// A member's id. Scheduler nodes are numbered 1, 2, 3 in the cluster config; 0 means "nobody".
public typealias NodeID = UInt64
/// A Raft term.
public typealias Term = UInt64
/// A position in the replicated log; 0 means "before the first entry".
public typealias LogIndex = UInt64

/// What a log entry carries.
public enum EntryKind: UInt8, Sendable, Hashable {
    /// Application data, opaque to Raft.
    case command = 0
    /// Appended by a new leader so that entries of earlier terms can commit (Raft §5.4.2).
    case noop = 1
    /// A membership change: the whole new `Membership`, encoded (`Membership.encoded`).
    case membership = 2
}

public struct Entry: Sendable, Hashable {
    public var index: LogIndex
    public var term: Term
    public var kind: EntryKind
    public var data: [UInt8]

    public init(index: LogIndex, term: Term, kind: EntryKind = .command, data: [UInt8] = []) {
        self.index = index
        self.term = term
        self.kind = kind
        self.data = data
    }
}

/// The state that must be durable before the node says anything that depends on it: a vote is
/// answered only after `vote` is on disk, an append acknowledged only after its entries are.
public struct HardState: Sendable, Hashable {
    public var term: Term
    /// Whom this node voted for in `term`; 0 when it has not voted.
    public var vote: NodeID
    public var commit: LogIndex

    public init(term: Term = 0, vote: NodeID = 0, commit: LogIndex = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// Who votes and who only follows. Starts from the configuration and changes one node at a time
/// through `membership` entries (`MembershipChange`).
public struct Membership: Sendable, Hashable {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>
    /// Each member's incarnation (the random number its data directory was created with) once a
    /// leader has heard it and committed a `claim`. A claimed voter votes only when it answers
    /// as that incarnation, so a node whose disk was wiped (and so forgot its votes and its log)
    /// cannot vote again until an operator replaces it. An unclaimed voter's vote counts as in
    /// plain Raft: a group's first election needs that, and refusing it would let one node that
    /// was down since the start, plus one failure, stop the group. Leaders claim members as soon
    /// as they hear from them, so a member stays unclaimed only until it first answers.
    public var incarnations: [NodeID: UInt64]
    /// Where the shell reaches the members added by `addLearner(_:address:)`: opaque to Raft,
    /// replicated with the membership so every node (and one restored from a snapshot) can dial
    /// a member that its configuration file does not list.
    public var addresses: [NodeID: String]
    public static let maxAddressBytes: UInt64 = 255

    public init(voters: Set<NodeID>, learners: Set<NodeID> = [], incarnations: [NodeID: UInt64] = [:],
                addresses: [NodeID: String] = [:]) {
        self.voters = voters
        self.learners = learners
        self.incarnations = incarnations
        self.addresses = addresses
    }

    public var members: Set<NodeID> { voters.union(learners) }
    public var quorum: Int { voters.count / 2 + 1 }

    /// Whether `node`, speaking as `incarnation`, is a voter of this membership.
    public func mayVote(_ node: NodeID, incarnation: UInt64) -> Bool {
        guard voters.contains(node) else { return false }
        return incarnations[node].map { $0 == incarnation } ?? true
    }

    /// True when the nodes in `granted` form a majority of the voters.
    public func isQuorum(_ granted: some Sequence<NodeID>) -> Bool {
        var count = 0
        for id in granted where voters.contains(id) { count += 1 }
        return count >= quorum
    }
}

public struct SnapshotMetadata: Sendable, Hashable {
    /// The last entry the snapshot includes, and its term.
    public var index: LogIndex
    public var term: Term
    public var membership: Membership

    public init(index: LogIndex, term: Term, membership: Membership) {
        self.index = index
        self.term = term
        self.membership = membership
    }
}

/// The state machine's state after applying every entry up to `metadata.index`.
public struct Snapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}

public enum Role: String, Sendable, Hashable {
    case follower, preCandidate, candidate, leader
}
