/// The Raft consensus core (issue: Raft). Pure: it never touches sockets, files or clocks. Input is
/// messages, ticks and proposals; output is state to persist, messages to send and entries to apply.

/// A voting member's id. Scheduler nodes are numbered 1, 2, 3 in the cluster config.
public typealias NodeID = UInt64
/// A Raft term.
public typealias Term = UInt64
/// A position in the replicated log; 0 means "before the first entry".
public typealias LogIndex = UInt64
