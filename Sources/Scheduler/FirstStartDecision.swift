import Raft

/// Whether a scheduler whose data directory was just made empty takes part in the group's first
/// start (and so may vote before a leader claims it) or joins a group that already holds data
/// (and waits to be claimed, or, if its id is claimed as an older incarnation because its disk
/// was wiped, for an operator to replace it). It cannot tell a first start from a wipe by its own
/// disk; its peers can: it asks each configured scheduler (`StatusReply.fresh`).
///
/// A pure function of what the peers answered, so every case is tested without a network.
public enum FirstStartDecision: Equatable, Sendable {
    /// Not enough answers yet: ask again shortly (the node neither votes nor campaigns meanwhile).
    case wait
    /// Every configured scheduler answered, and each has a fresh directory: this is the group's
    /// first start. Every one, not a majority: a majority of fresh directories is also what two
    /// wiped disks of three look like while the third is down, and they must not start a new
    /// group that the third's log would then collide with.
    case firstStart
    /// A peer holds data: the group exists, so this directory is a newcomer or a wiped disk.
    case join(because: NodeID)

    public enum Answer: Equatable, Sendable {
        /// Its directory was made empty at its own start and it holds no Raft state yet.
        case fresh
        /// It holds Raft state (a term, a log or a snapshot), or an identity from an earlier run.
        case holdsData
    }

    /// `voters`: the configured schedulers (the bootstrap membership), this node included;
    /// `answers`: what the peers that replied said (peers of another cluster are left out by the
    /// shell, as if they had not answered). A peer that has decided to join answers as holding
    /// data (`StatusReply.fresh` is false for it), so a joiner never counts towards a first start.
    public static func decide(me: NodeID, voters: Set<NodeID>, answers: [NodeID: Answer]) -> FirstStartDecision {
        if let holder = answers.filter({ $0.value == .holdsData }).keys.min() { return .join(because: holder) }
        return voters.allSatisfy({ $0 == me || answers[$0] == .fresh }) ? .firstStart : .wait
    }
}

extension FirstStartDecision {
    /// Whether the probe decided this node joins an existing group.
    var isJoin: Bool {
        if case .join = self { return true }
        return false
    }
}
