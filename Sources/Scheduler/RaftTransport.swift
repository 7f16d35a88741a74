import Raft

/// Where a replica's outgoing Raft messages go. Sending never waits and may drop: Raft
/// retransmits what matters.
public protocol RaftTransport: Sendable {
    func send(_ message: Raft.Message)
}
