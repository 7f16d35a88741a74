/// The leader: replication with pipelining and flow control, commit, heartbeats, check-quorum,
/// snapshots for followers behind compaction, and leadership transfer.
extension RaftNode {
    mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        if electionElapsed >= config.electionTicks {
            electionElapsed = 0
            if config.checkQuorum {
                let active = progress.filter { $0.key == id || $0.value.recentActive }.map(\.key)
                guard membership.isQuorum(active) else {
                    // Cut off from a quorum: stop accepting work that can never commit.
                    becomeFollower(term: term, leader: 0)
                    return
                }
                for peer in peers { progress[peer]?.recentActive = false }
            }
            // A transfer that has not finished within an election timeout is abandoned.
            transferTarget = 0
        }
        if heartbeatElapsed >= config.heartbeatTicks {
            heartbeatElapsed = 0
            broadcastHeartbeat()
        }
        claimUnclaimedMember()
    }

    mutating func stepLeader(_ m: Message) {
        guard let known = progress[m.from]?.incarnation else { return }
        if known != 0, m.incarnation != known {
            // Another disk answers under that id (wiped and restarted): what the old one had
            // acknowledged is gone, so replication starts over, or the leader would count
            // entries it no longer holds and ignore its refusals as stale for ever.
            var fresh = Progress(next: log.lastIndex + 1, maxInflight: config.maxInflightMessages)
            fresh.recentActive = true
            progress[m.from] = fresh
        }
        progress[m.from]!.incarnation = m.incarnation
        defer { claimUnclaimedMember() }
        switch m.body {
        case .appendResponse(let response):
            progress[m.from]!.recentActive = true
            handleAppendResponse(from: m.from, response)
        case .heartbeatResponse(let response):
            progress[m.from]!.recentActive = true
            handleHeartbeatResponse(from: m.from, response)
        case .snapshotResponse(let response):
            progress[m.from]!.recentActive = true
            handleSnapshotResponse(from: m.from, response)
        default:
            break
        }
    }

    /// Sends each follower what it lacks, pipelining as far as its in-flight window allows.
    mutating func broadcastAppend(allowEmpty: Bool) {
        for peer in peers where sendAppend(to: peer, allowEmpty: allowEmpty) {
            while sendAppend(to: peer, allowEmpty: false) {}
        }
    }

    mutating func broadcastHeartbeat() {
        for peer in peers {
            let commit = min(progress[peer]?.match ?? 0, log.committed)
            send(to: peer, .heartbeat(Heartbeat(commit: commit, readRound: readRound)))
        }
    }

    /// Sends the follower what it lacks, if its flow control allows. Returns true if sent.
    @discardableResult
    mutating func sendAppend(to peer: NodeID, allowEmpty: Bool) -> Bool {
        guard var pr = progress[peer], !pr.isPaused else { return false }
        let prevIndex = pr.next - 1
        guard let prevTerm = log.term(at: prevIndex) else {
            // The entries it needs are compacted away: send the snapshot instead.
            sendSnapshot(to: peer)
            return false
        }
        let entries = log.entries(from: pr.next, maxCount: config.maxEntriesPerMessage,
                                  maxBytes: config.maxBytesPerMessage)
        if entries.isEmpty && !allowEmpty { return false }
        send(to: peer, .append(AppendRequest(prevLogIndex: prevIndex, prevLogTerm: prevTerm,
                                             entries: entries, leaderCommit: log.committed)))
        switch pr.state {
        case .replicate:
            if let last = entries.last {
                pr.next = last.index + 1
                pr.inflight.add(last.index)
            }
        case .probe:
            pr.probeSent = true
        case .snapshot:
            break
        }
        progress[peer] = pr
        return true
    }

    mutating func handleAppendResponse(from peer: NodeID, _ response: AppendResponse) {
        guard response.success else {
            // Fast back-off: skip to where the logs can meet instead of one index per round trip.
            var hint = response.rejectIndex
            if response.hintTerm > 0 {
                hint = log.lastIndex(atOrBelow: response.hintIndex, withTermAtMost: response.hintTerm)
            } else if response.hintIndex < hint {
                hint = response.hintIndex
            }
            if progress[peer]!.rejected(at: response.rejectIndex, hint: hint) {
                if progress[peer]!.state == .replicate { progress[peer]!.becomeProbe() }
                sendAppend(to: peer, allowEmpty: true)
            }
            return
        }
        var pr = progress[peer]!
        let advanced = pr.acknowledge(through: response.matchIndex)
        // A probe answered at exactly our match point also tells us where the logs meet.
        guard advanced || (pr.state == .probe && pr.match == response.matchIndex) else {
            progress[peer] = pr
            return
        }
        switch pr.state {
        case .probe:
            pr.becomeReplicate()
        case .snapshot(let index) where pr.match >= index:
            pr.becomeReplicate()
        case .snapshot:
            break
        case .replicate:
            pr.inflight.free(through: pr.match)
        }
        progress[peer] = pr
        if maybeCommit() {
            broadcastAppend(allowEmpty: true)
        }
        while sendAppend(to: peer, allowEmpty: false) {}
        if peer == transferTarget, progress[peer]!.match == log.lastIndex {
            send(to: peer, .timeoutNow)
        }
    }

    mutating func handleHeartbeatResponse(from peer: NodeID, _ response: HeartbeatResponse) {
        var pr = progress[peer]!
        pr.probeSent = false
        if pr.state == .replicate, pr.inflight.isFull { pr.inflight.freeFirst() }
        if response.readRound > pr.readRoundAcked {
            pr.readRoundAcked = response.readRound
        }
        progress[peer] = pr
        confirmReads()
        if case .snapshot = pr.state {
            sendSnapshotChunk(to: peer, offset: pr.snapshotResumeOffset ?? pr.snapshotSentOffset)
        } else if pr.match < log.lastIndex {
            // Lost appends: an empty append at `next` is rejected if there is a gap, which
            // sends the follower back to probing from what it really has.
            sendAppend(to: peer, allowEmpty: true)
        }
    }

    /// Commits the highest index a quorum holds, but only if it is of this term (§5.4.2): an
    /// entry of an earlier term can be on a majority and still be overwritten (figure 8).
    mutating func maybeCommit() -> Bool {
        let matches = membership.voters.map { progress[$0]?.match ?? 0 }.sorted(by: >)
        let candidate = matches[membership.quorum - 1]
        guard candidate > log.committed else { return false }
        guard config.testingFaults.commitPreviousTermByCounting || log.term(at: candidate) == term else {
            return false
        }
        log.commit(to: candidate)
        releaseReadsAwaitingCommit()
        return true
    }

    mutating func sendSnapshot(to peer: NodeID) {
        guard let snap = snapshot else {
            preconditionFailure("raft: entries before \(log.firstIndex) are compacted but no snapshot is held")
        }
        progress[peer]!.becomeSnapshot(index: snap.metadata.index)
        sendSnapshotChunk(to: peer, offset: 0)
    }

    mutating func sendSnapshotChunk(to peer: NodeID, offset: Int) {
        guard let snap = snapshot else { return }
        let total = snap.data.count
        let start = min(max(offset, 0), total)
        let end = min(start + config.snapshotChunkBytes, total)
        progress[peer]!.snapshotSentOffset = start
        progress[peer]!.snapshotResumeOffset = nil
        send(to: peer, .snapshotChunk(SnapshotChunk(
            metadata: snap.metadata, offset: start, totalSize: total,
            data: Array(snap.data[start..<end]), done: end == total)))
    }

    mutating func handleSnapshotResponse(from peer: NodeID, _ response: SnapshotResponse) {
        guard case .snapshot(let index) = progress[peer]!.state else { return }
        if response.installed {
            _ = progress[peer]!.acknowledge(through: response.snapshotIndex)
            progress[peer]!.becomeProbe()
            sendAppend(to: peer, allowEmpty: true)
            return
        }
        guard response.snapshotIndex == index else {
            // About a snapshot we no longer send: start over with the current one.
            sendSnapshot(to: peer)
            return
        }
        if response.accepted {
            // Duplicated or reordered acknowledgements must not start a second stream of chunks.
            if response.nextOffset > progress[peer]!.snapshotSentOffset {
                sendSnapshotChunk(to: peer, offset: response.nextOffset)
            }
        } else {
            progress[peer]!.snapshotResumeOffset = response.nextOffset
        }
    }

    /// Hands leadership to `target` (a voter): once its log is complete it is told to campaign
    /// at once. Proposals are refused meanwhile; the transfer is dropped after an election timeout.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leader: leader == 0 ? nil : leader) }
        guard membership.voters.contains(target) else {
            throw .invalidRequest("cannot transfer leadership to \(target): not a voter")
        }
        // The pending change may remove the target: a timeoutNow already sent cannot be recalled.
        guard !membershipChangePending else { throw .membershipChangePending(index: pendingMembershipIndex) }
        if target == id || target == transferTarget { return }
        transferTarget = target
        electionElapsed = 0
        if progress[target]!.match == log.lastIndex {
            send(to: target, .timeoutNow)
        } else {
            sendAppend(to: target, allowEmpty: true)
        }
    }
}
