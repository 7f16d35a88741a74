import Raft

/// What a peer's Raft message must be before the core sees it. The core trusts its inputs' shape
/// (entries in order, terms that can be incremented) the way etcd's raft does: a message that
/// breaks that shape would trip its preconditions, or persist a term from which `term + 1`
/// overflows and crash the node on every restart. A message that fails here is refused with a
/// reason, its connection closed, and the core never sees it.
///
/// The bounds are far beyond anything an honest group reaches (a term is one election; 2^62
/// elections at one a millisecond take 146 million years) and leave room for every `+ 1`.
public enum RaftMessageCheck {
    public static let maxTerm: Term = 1 << 62
    public static let maxIndex: LogIndex = 1 << 62
    /// A snapshot's total size: bounds the offsets' arithmetic, not the memory (frames do that).
    public static let maxSnapshotBytes = 1 << 40

    /// nil when `message` may reach the core, sent by `sender` (the node id its connection
    /// authenticated); otherwise what is wrong with it. (A message addressed to another node is
    /// not wrong, only stale, a peer dialling an address another member took over: the core drops it.)
    public static func problem(_ message: Raft.Message, sender: NodeID) -> String? {
        if message.from != sender { return "from node \(message.from) on the connection of node \(sender)" }
        if message.from == 0 || message.from == message.to { return "from node \(message.from) to node \(message.to)" }
        if message.term > maxTerm { return "term \(message.term) above \(maxTerm)" }
        let term = message.term
        switch message.body {
        case .voteRequest(let r):
            if r.lastLogIndex > maxIndex { return "last log index \(r.lastLogIndex) above \(maxIndex)" }
            if r.lastLogTerm > term { return "a candidate's last log term \(r.lastLogTerm) above its term \(term)" }
        case .voteResponse, .heartbeatResponse, .timeoutNow:
            break
        case .append(let r):
            return appendProblem(r, term: term)
        case .appendResponse(let r):
            if max(r.matchIndex, r.rejectIndex, r.hintIndex) > maxIndex { return "an index above \(maxIndex)" }
            if r.hintTerm > maxTerm { return "hint term \(r.hintTerm) above \(maxTerm)" }
        case .heartbeat(let r):
            if r.commit > maxIndex { return "commit \(r.commit) above \(maxIndex)" }
        case .snapshotChunk(let c):
            let meta = c.metadata
            if meta.index == 0 || meta.index > maxIndex { return "snapshot index \(meta.index) outside 1...\(maxIndex)" }
            if meta.term == 0 || meta.term > term { return "snapshot term \(meta.term) outside 1...\(term)" }
            if c.totalSize < 0 || c.totalSize > maxSnapshotBytes { return "snapshot size \(c.totalSize) outside 0...\(maxSnapshotBytes)" }
            if c.offset < 0 || c.offset > c.totalSize - c.data.count { return "chunk at \(c.offset) of \(c.data.count) bytes outside a snapshot of \(c.totalSize)" }
            if c.done, c.offset + c.data.count != c.totalSize { return "the last chunk ends at \(c.offset + c.data.count), not \(c.totalSize)" }
        case .snapshotResponse(let r):
            if r.snapshotIndex > maxIndex { return "snapshot index \(r.snapshotIndex) above \(maxIndex)" }
            if r.nextOffset < 0 || r.nextOffset > maxSnapshotBytes { return "offset \(r.nextOffset) outside 0...\(maxSnapshotBytes)" }
        }
        return nil
    }

    /// The entries continue the log at `prevLogIndex` one by one, with terms that never fall,
    /// start at or after `prevLogTerm` and never pass the leader's own term.
    private static func appendProblem(_ r: AppendRequest, term: Term) -> String? {
        if r.prevLogTerm > term { return "previous log term \(r.prevLogTerm) above the leader's term \(term)" }
        if r.leaderCommit > maxIndex { return "leader commit \(r.leaderCommit) above \(maxIndex)" }
        guard r.prevLogIndex <= maxIndex - LogIndex(r.entries.count) else {
            return "\(r.entries.count) entries after index \(r.prevLogIndex) pass \(maxIndex)"
        }
        if r.prevLogIndex == 0, r.prevLogTerm != 0 { return "previous log term \(r.prevLogTerm) at index 0" }
        var previousTerm = r.prevLogTerm
        for (offset, entry) in r.entries.enumerated() {
            let expected = r.prevLogIndex + 1 + LogIndex(offset)
            if entry.index != expected { return "entry \(offset) has index \(entry.index), not \(expected)" }
            if entry.term < previousTerm || entry.term > term || entry.term == 0 {
                return "entry \(entry.index) has term \(entry.term), outside \(max(previousTerm, 1))...\(term)"
            }
            previousTerm = entry.term
        }
        return nil
    }
}
