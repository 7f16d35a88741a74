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
    /// A majority of the configured schedulers (this one included) have fresh directories and
    /// none holds data: this is the group's first start.
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
    /// shell, as if they had not answered).
    public static func decide(me: NodeID, voters: Set<NodeID>, answers: [NodeID: Answer]) -> FirstStartDecision {
        if let holder = answers.filter({ $0.value == .holdsData }).keys.min() { return .join(because: holder) }
        let fresh = voters.filter { $0 == me || answers[$0] == .fresh }.count
        return fresh >= voters.count / 2 + 1 ? .firstStart : .wait
    }
}
