/// Linearizable reads by read index (§8): remember the commit index, confirm with a quorum that
/// we are still the leader, then serve once the state machine has applied that index.
extension RaftNode {
    /// Requests a read point. The answer comes as a `ReadState` with the same `context` in a
    /// later `Ready`, or in `abandonedReads` if this node loses leadership first.
    public mutating func readIndex(context: UInt64) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader == 0 ? nil : leader) }
        guard log.term(at: log.committed) == term else {
            // Until an entry of this term commits, our commit index may lag the real one.
            readsAwaitingCommit.append(context)
            return
        }
        if membership.voters == [id] {
            readStates.append(ReadState(index: log.committed, context: context))
            return
        }
        readRound += 1
        pendingReads.append((readRound, log.committed, context))
        broadcastHeartbeat()
    }

    mutating func releaseReadsAwaitingCommit() {
        guard !readsAwaitingCommit.isEmpty, log.term(at: log.committed) == term else { return }
        let waiting = readsAwaitingCommit
        readsAwaitingCommit = []
        for context in waiting {
            do { try readIndex(context: context) } catch { abandonedReads.append(context) }
        }
    }

    /// A read of round r is confirmed once a quorum answered a heartbeat of round r or later:
    /// those heartbeats left after the read arrived, so nobody else led at that moment.
    mutating func confirmReads() {
        while let first = pendingReads.first {
            let acked = progress.filter { $0.key == id || $0.value.readRoundAcked >= first.round }.map(\.key)
            guard membership.isQuorum(acked) else { return }
            readStates.append(ReadState(index: first.index, context: first.context))
            pendingReads.removeFirst()
        }
    }
}
