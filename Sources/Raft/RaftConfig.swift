/// How a Raft node behaves. Times are in ticks; the shell decides how long a tick is (the
/// scheduler uses 100 ms, so the defaults give a 1–2 s election timeout and 100 ms heartbeats).
public struct RaftConfig: Sendable {
    public var id: NodeID
    public var membership: Membership
    /// A follower that hears nothing for a random time in [electionTicks, 2 × electionTicks) campaigns.
    public var electionTicks: Int = 10
    public var heartbeatTicks: Int = 1
    /// Campaign first without raising terms, so a node that was cut off cannot disrupt a healthy group.
    public var preVote: Bool = true
    /// A leader that has not heard from a quorum for an election timeout steps down, and followers
    /// that hear from a leader ignore votes for others until the timeout passes (leader lease).
    public var checkQuorum: Bool = true
    /// Append messages a leader may have unacknowledged towards one follower.
    public var maxInflightMessages: Int = 256
    public var maxEntriesPerMessage: Int = 1024
    public var maxBytesPerMessage: Int = 1 << 20
    public var snapshotChunkBytes: Int = 256 << 10
    /// This node's incarnation: a random non-zero number created with its data directory, so a
    /// wiped node comes back as another incarnation. The leader claims each member's in the
    /// membership, and from then on only the claimed one votes. 0 turns the claims off (tests
    /// of other things, and the simulation's seeds without disk wipes).
    public var incarnation: UInt64 = 0
    /// This node's data directory was created empty after the group first started (the shell
    /// found other members holding data), so it may be a wiped disk under an old id: it neither
    /// votes nor campaigns until it applies a membership that claims its own incarnation. A
    /// node of a group's first start (`joining` false) votes while unclaimed, as plain Raft.
    public var joining = false
    /// Seeds the election-timeout jitter, so a simulation replays exactly.
    public var randomSeed: UInt64 = 0
    /// Deliberate bugs, for proving that the simulation's checkers catch them. Never set in production.
    public var testingFaults: TestingFaults = .init()

    public init(id: NodeID, voters: Set<NodeID>) {
        self.id = id
        self.membership = Membership(voters: voters)
        self.randomSeed = id &* 0x9E37_79B9_7F4A_7C15
    }

    public func validate() throws(RaftError) {
        func bad(_ key: String, _ why: String) -> RaftError { .invalidConfig(key: key, reason: why) }
        guard id != 0 else { throw bad("id", "must be non-zero") }
        guard membership.members.contains(id) else { throw bad("id", "\(id) is not a member \(membership.voters.sorted())") }
        guard membership.voters.isDisjoint(with: membership.learners) else { throw bad("learners", "a node cannot be both voter and learner") }
        guard heartbeatTicks >= 1 else { throw bad("heartbeatTicks", "must be at least 1") }
        guard electionTicks > heartbeatTicks else { throw bad("electionTicks", "must exceed heartbeatTicks (\(heartbeatTicks))") }
        guard maxInflightMessages >= 1 else { throw bad("maxInflightMessages", "must be at least 1") }
        guard maxEntriesPerMessage >= 1 else { throw bad("maxEntriesPerMessage", "must be at least 1") }
        guard snapshotChunkBytes >= 1 else { throw bad("snapshotChunkBytes", "must be at least 1") }
    }
}

/// Each flag re-creates one of the classic Raft bugs. The simulator's tests turn them on one at a
/// time and require that its checkers report a violation.
public struct TestingFaults: Sendable, Hashable {
    /// Count replicas of entries from earlier terms towards commit (the paper's figure 8).
    public var commitPreviousTermByCounting = false
    /// Grant votes without the log up-to-date check (§5.4.1).
    public var skipLogUpToDateCheck = false
    /// Truncate the log at the first entry of an append instead of at the first conflict.
    public var truncateAtFirstEntry = false
    /// Count every voter's vote whatever incarnation it answers as: a wiped disk votes again.
    public var ignoreIncarnations = false

    public init() {}
}

public enum RaftError: Error, Sendable, Hashable, CustomStringConvertible {
    case notLeader(leader: NodeID?)
    case leadershipTransferInProgress
    /// A membership change is appended but not yet applied; one at a time.
    case membershipChangePending(index: LogIndex)
    case invalidConfig(key: String, reason: String)
    case compacted(requested: LogIndex, firstAvailable: LogIndex)
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .notLeader(let leader): leader.map { "not the leader; try node \($0)" } ?? "not the leader; no leader known"
        case .leadershipTransferInProgress: "leadership transfer in progress; retry shortly"
        case .membershipChangePending(let index): "a membership change (entry \(index)) is not applied yet; retry shortly"
        case .invalidConfig(let key, let reason): "invalid raft config \(key): \(reason)"
        case .compacted(let requested, let first): "index \(requested) is compacted; first available is \(first)"
        case .invalidRequest(let why): why
        }
    }
}
