/// Membership changes: the leader appends one `membership` entry at a time; every node switches
/// to the new membership when it applies that entry (etcd's rule), which is safe because a
/// single-server change keeps the old and new majorities overlapping.
extension RaftNode {
    /// Whether a change is appended and not yet applied here (a leader refuses another meanwhile).
    public var membershipChangePending: Bool { pendingMembershipIndex > log.applied }

    /// Appends `change` as a `membership` entry; it takes effect on each node as that node
    /// applies it. Only a leader accepts changes, one at a time, and only once an entry of its
    /// own term has committed: a leader that has not yet committed in its term may hold a log
    /// from which a change of an earlier leader is still to be overwritten or committed (the
    /// single-server bug Ongaro describes in his raft-dev post of 2015).
    @discardableResult
    public mutating func proposeMembershipChange(_ change: MembershipChange) throws(RaftError) -> (index: LogIndex, term: Term) {
        guard role == .leader else { throw .notLeader(leader: leader == 0 ? nil : leader) }
        guard config.checkQuorum else {
            // Without the lease a removed node that has not learned of its removal campaigns
            // for ever, raising the terms of the members that still count it (thesis §4.2.3).
            throw .invalidRequest("membership changes need check-quorum (the leader lease)")
        }
        guard transferTarget == 0 else { throw .leadershipTransferInProgress }
        guard !membershipChangePending, log.term(at: log.committed) == term else {
            throw .membershipChangePending(index: membershipChangePending ? pendingMembershipIndex : log.lastIndex)
        }
        let next = try membership.applying(change)
        if case .promote(let learner) = change {
            // A voter that cannot yet store what the leader appends would only slow commits, and
            // with a quorum that needs it, stop them: promote only a learner close behind.
            // Heard from lately, too: a learner that caught up and then died looks caught up on
            // an idle log, and promoting it would leave a quorum that tolerates one failure less.
            guard let pr = progress[learner], pr.state == .replicate, pr.recentActive,
                  pr.match + LogIndex(config.maxEntriesPerMessage) >= log.lastIndex else {
                throw .invalidRequest("learner \(learner) has not caught up (match \(progress[learner]?.match ?? 0) of \(log.lastIndex))")
            }
            // With incarnations in use, an unclaimed voter's vote would count whoever answers
            // under its id; a learner is claimed as soon as the leader hears from it.
            guard config.incarnation == 0 || membership.incarnations[learner] != nil else {
                throw .invalidRequest("learner \(learner) is not claimed yet (the leader has not heard its incarnation)")
            }
        }
        let entry = Entry(index: log.lastIndex + 1, term: term, kind: .membership, data: next.encoded)
        log.append(entry)
        pendingMembershipIndex = entry.index
        broadcastPending = true
        return (entry.index, entry.term)
    }

    /// Switches to the membership a committed entry carries, as the entry is applied.
    mutating func applyMembership(_ entry: Entry) {
        guard let next = Membership(encoded: entry.data) else {
            // Only a leader's proposal writes these, and it encodes a valid membership. Bytes that
            // do not decode are skipped by every node alike (the rule is deterministic), counted
            // for the shell to report, and never crash a node.
            undecodableMembershipEntries += 1
            return
        }
        membership = next
        membershipHistory.append((entry.index, next))
        if role == .candidate || role == .preCandidate, !next.voters.contains(id) {
            // A campaign started before the removal was applied must not win a group this node
            // is no longer a voter of (a timeoutNow can arrive ahead of the removal's commit).
            becomeFollower(term: term, leader: 0)
            return
        }
        guard role == .leader else { return }
        guard next.members.contains(id) else {
            // Removed: a leader that is no longer a member stops leading and the others elect.
            // It tells them first that the change committed, or they would learn it only from
            // their next leader and meanwhile still count it: appends to those it may send to,
            // and heartbeats (never held back by flow control, carrying what each one holds of
            // the commit) to all. Both can be lost; then the others still elect, a timeout later.
            broadcastAppend(allowEmpty: true)
            broadcastHeartbeat()
            becomeFollower(term: term, leader: 0)
            return
        }
        for member in progress.keys where !next.members.contains(member) { progress[member] = nil }
        if transferTarget != 0, !next.voters.contains(transferTarget) { transferTarget = 0 }
        for member in next.members where progress[member] == nil {
            var pr = Progress(next: log.lastIndex + 1, maxInflight: config.maxInflightMessages)
            pr.recentActive = true
            progress[member] = pr
            // A probe at the log's end: the newcomer refuses it and the back-off finds where its
            // log starts (or that it needs the snapshot).
            sendAppend(to: member, allowEmpty: true)
        }
    }

    /// Claims the incarnation of one member that has none yet: this leader's own first, then
    /// each member's as heard in its replies. One change at a time, like any other; called on
    /// every tick and reply, so the claims follow one another as fast as they commit.
    mutating func claimUnclaimedMember() {
        guard config.incarnation != 0, role == .leader, transferTarget == 0, !membershipChangePending,
              log.term(at: log.committed) == term else { return }
        var heard = [(id, config.incarnation)]
        for (member, pr) in progress.sorted(by: { $0.key < $1.key }) where pr.incarnation != 0 {
            heard.append((member, pr.incarnation))
        }
        for (member, incarnation) in heard
        where membership.members.contains(member) && membership.incarnations[member] == nil {
            _ = try? proposeMembershipChange(.claim(member, incarnation: incarnation))
            return
        }
    }
}
