/// The messages Raft nodes exchange. The scheduler shell maps them to `RaftMessage` on the wire.
public struct Message: Sendable, Hashable {
    public var from: NodeID
    public var to: NodeID
    /// The sender's term; for a pre-vote request, the term the sender would campaign in.
    public var term: Term
    public var body: Body
    /// The sender's incarnation (`RaftConfig.incarnation`): votes count only from the one the
    /// membership has claimed, and a leader claims the incarnation it hears from a member.
    public var incarnation: UInt64

    public init(from: NodeID, to: NodeID, term: Term, body: Body, incarnation: UInt64 = 0) {
        self.from = from
        self.to = to
        self.term = term
        self.body = body
        self.incarnation = incarnation
    }

    public enum Body: Sendable, Hashable {
        case voteRequest(VoteRequest)
        case voteResponse(VoteResponse)
        case append(AppendRequest)
        case appendResponse(AppendResponse)
        /// Carries the commit index and a read-index round; never entries, never rejected.
        case heartbeat(Heartbeat)
        case heartbeatResponse(HeartbeatResponse)
        case snapshotChunk(SnapshotChunk)
        case snapshotResponse(SnapshotResponse)
        /// Leadership transfer: the receiver campaigns at once, ignoring leader leases.
        case timeoutNow
    }
}

public struct VoteRequest: Sendable, Hashable {
    public var preVote: Bool
    public var lastLogIndex: LogIndex
    public var lastLogTerm: Term
    /// Sent after `timeoutNow`: voters grant even while they still hear from a leader.
    public var leadershipTransfer: Bool

    public init(preVote: Bool, lastLogIndex: LogIndex, lastLogTerm: Term, leadershipTransfer: Bool) {
        self.preVote = preVote
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
        self.leadershipTransfer = leadershipTransfer
    }
}

public struct VoteResponse: Sendable, Hashable {
    public var preVote: Bool
    public var granted: Bool

    public init(preVote: Bool, granted: Bool) {
        self.preVote = preVote
        self.granted = granted
    }
}

public struct AppendRequest: Sendable, Hashable {
    public var prevLogIndex: LogIndex
    public var prevLogTerm: Term
    public var entries: [Entry]
    public var leaderCommit: LogIndex

    public init(prevLogIndex: LogIndex, prevLogTerm: Term, entries: [Entry], leaderCommit: LogIndex) {
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.entries = entries
        self.leaderCommit = leaderCommit
    }
}

public struct AppendResponse: Sendable, Hashable {
    public var success: Bool
    /// On success: the follower's log matches the leader's up to here.
    public var matchIndex: LogIndex
    /// On failure: the `prevLogIndex` that did not match.
    public var rejectIndex: LogIndex
    /// On failure: the follower's largest index at or below `rejectIndex` whose term is at most the
    /// request's `prevLogTerm`, and that term, so the leader can skip a whole conflicting term.
    public var hintIndex: LogIndex
    public var hintTerm: Term

    public init(success: Bool, matchIndex: LogIndex = 0, rejectIndex: LogIndex = 0,
                hintIndex: LogIndex = 0, hintTerm: Term = 0) {
        self.success = success
        self.matchIndex = matchIndex
        self.rejectIndex = rejectIndex
        self.hintIndex = hintIndex
        self.hintTerm = hintTerm
    }
}

public struct Heartbeat: Sendable, Hashable {
    /// The leader's commit index capped at what it knows this follower holds.
    public var commit: LogIndex
    /// The read-index round this heartbeat confirms leadership for; 0 for none.
    public var readRound: UInt64

    public init(commit: LogIndex, readRound: UInt64) {
        self.commit = commit
        self.readRound = readRound
    }
}

public struct HeartbeatResponse: Sendable, Hashable {
    public var readRound: UInt64
    public init(readRound: UInt64) { self.readRound = readRound }
}

public struct SnapshotChunk: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var offset: Int
    public var totalSize: Int
    public var data: [UInt8]
    public var done: Bool

    public init(metadata: SnapshotMetadata, offset: Int, totalSize: Int, data: [UInt8], done: Bool) {
        self.metadata = metadata
        self.offset = offset
        self.totalSize = totalSize
        self.data = data
        self.done = done
    }
}

public struct SnapshotResponse: Sendable, Hashable {
    /// The snapshot the response is about.
    public var snapshotIndex: LogIndex
    /// The byte offset the follower expects next.
    public var nextOffset: Int
    /// False when the chunk did not fit (wrong offset or snapshot): resume from `nextOffset`.
    public var accepted: Bool
    /// True once the whole snapshot is durable on the follower.
    public var installed: Bool

    public init(snapshotIndex: LogIndex, nextOffset: Int, accepted: Bool, installed: Bool) {
        self.snapshotIndex = snapshotIndex
        self.nextOffset = nextOffset
        self.accepted = accepted
        self.installed = installed
    }
}
