import Raft

/// Which of the two connections to a peer a Raft message travels on. Appends (with their entries)
/// and snapshot chunks can be up to a megabyte each and queue behind one another when a follower
/// reads slowly; votes, heartbeats, leadership transfer and every response are a few bytes and
/// decide liveness, so they go on a connection of their own and never wait behind a bulk frame
/// (etcd's rafthttp splits its streams the same way). Raft tolerates the reordering this allows
/// between the two: every message is judged by its term and indexes alone.
///
/// Appends stay on one lane even when empty: an empty append that overtook the entries before it
/// would find a gap in the follower's log and be refused, and the refusal would send the leader
/// back to probing.
enum RaftLane: Sendable, Hashable, CaseIterable {
    case control
    case bulk

    static func of(_ body: Raft.Message.Body) -> RaftLane {
        switch body {
        case .append, .snapshotChunk: .bulk
        case .voteRequest, .voteResponse, .appendResponse, .heartbeat, .heartbeatResponse,
             .snapshotResponse, .timeoutNow: .control
        }
    }
}
