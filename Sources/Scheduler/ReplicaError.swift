import Raft

/// Why a replica could not do what was asked.
public enum ReplicaError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Only the leader takes writes and answers linearizable reads; this is who it is, if known.
    case notLeader(leader: NodeID?)
    /// The entry was proposed but leadership was lost before it was applied; it may or may not
    /// commit later. Commands are idempotent, so the caller retries at the new leader.
    case leadershipLost
    case leadershipTransferInProgress
    case storage(String)
    case stopped
    /// Too many changes wait for a slow disk; nothing was proposed. Retry shortly.
    case storageBacklog
    /// The command's entry would exceed `SchedulerReplica.maxEntryBytes`; nothing was proposed.
    case entryTooLarge(bytes: Int, limit: Int)
    /// The leader refused a membership change (another pending, a learner not caught up or
    /// not claimed, a node already a member...); nothing was proposed.
    case membershipChangeRefused(String)

    public var description: String {
        switch self {
        case .notLeader(let leader): leader.map { "not the leader; the leader is node \($0)" } ?? "not the leader; no leader is known"
        case .leadershipLost: "leadership was lost before the change was applied; retry at the new leader"
        case .leadershipTransferInProgress: "leadership transfer in progress; retry shortly"
        case .storage(let why): "storage failed: \(why)"
        case .stopped: "the replica is stopping"
        case .storageBacklog: "too many changes wait for the disk; retry shortly"
        case .entryTooLarge(let bytes, let limit): "a log entry of \(bytes) bytes exceeds the limit of \(limit)"
        case .membershipChangeRefused(let why): "membership change refused: \(why)"
        }
    }
}
