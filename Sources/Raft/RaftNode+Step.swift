/// Message dispatch: the term rules shared by every role, then the role's own handling.
extension RaftNode {
    public mutating func step(_ m: Message) {
        guard m.to == id, m.from != id else { return }
        if !membership.members.contains(m.from) {
            // Requests are taken from anyone (thesis §4.1: a server does not consult its
            // configuration to process them): a node that has not yet applied a newcomer's
            // addition must follow that newcomer when it leads, and answer its vote requests,
            // or a group that needs this node's vote would elect nobody. A removed node that
            // has not learned of its removal cannot disrupt a working group: while a node hears
            // its leader, check-quorum's lease ignores vote requests (membership changes
            // require check-quorum). Replies from outside the membership count for nothing.
            switch m.body {
            case .append, .heartbeat, .snapshotChunk, .timeoutNow, .voteRequest: break
            default: return
            }
        }

        if case .voteRequest = m.body, !isNotDisowned(m.from, incarnation: m.incarnation) {
            // Another incarnation under a claimed id (a wiped disk): it must not raise our term.
            return
        }
        if m.term > term {
            if case .voteRequest(let request) = m.body, !request.leadershipTransfer, inLease {
                // Check-quorum's lease: we hear from a live leader, so this candidate is cut off
                // (or behind) and must not disrupt us. Not even our term moves.
                return
            }
            switch m.body {
            case .voteRequest(let request) where request.preVote:
                break // a pre-vote never changes our term
            case .voteResponse(let response) where response.preVote && response.granted:
                break // granted pre-votes carry the term we would campaign in
            case .append, .heartbeat, .snapshotChunk:
                becomeFollower(term: m.term, leader: m.from)
            case .voteRequest:
                // Only hearing a leader or granting a vote restarts the election timer (Raft,
                // figure 2). If refusing a candidate whose log is behind restarted it too, a
                // behind node on a faster clock could keep the up-to-date one from ever timing
                // out first: without pre-vote, in a two-voter membership mid-change, raft-sim
                // seed 302 went twenty terms that way.
                let elapsed = electionElapsed
                becomeFollower(term: m.term, leader: 0)
                electionElapsed = elapsed
            default:
                becomeFollower(term: m.term, leader: 0)
            }
        } else if m.term < term {
            switch m.body {
            case .append, .heartbeat, .snapshotChunk:
                // A deposed leader still sending: tell it our term so it steps down. Without this,
                // with pre-vote or check-quorum a node could be stuck ignoring it forever.
                if config.checkQuorum || config.preVote {
                    send(to: m.from, .appendResponse(AppendResponse(success: false)))
                }
            case .voteRequest(let request):
                // Refused at our term, so the candidate learns it (Raft, figure 2). Silence would
                // leave a candidate that only we can complete a quorum with campaigning below our
                // term for ever, if we never send it anything else (raft-sim seed 7271: it was a
                // learner in our membership, promoted by a change we had not applied).
                send(to: m.from, .voteResponse(VoteResponse(preVote: request.preVote, granted: false)))
            default:
                break
            }
            return
        }

        if case .voteRequest(let request) = m.body {
            handleVoteRequest(m, request)
            return
        }
        switch role {
        case .leader: stepLeader(m)
        case .candidate, .preCandidate: stepCandidate(m)
        case .follower: stepFollower(m)
        }
    }

    mutating func stepCandidate(_ m: Message) {
        switch m.body {
        case .voteResponse(let response):
            handleVoteResponse(m, response)
        case .append, .heartbeat, .snapshotChunk:
            // Someone won this term; follow it.
            becomeFollower(term: term, leader: m.from)
            stepFollower(m)
        default:
            break
        }
    }

    mutating func stepFollower(_ m: Message) {
        switch m.body {
        case .append(let request):
            electionElapsed = 0
            leader = m.from
            handleAppend(from: m.from, request)
        case .heartbeat(let heartbeat):
            electionElapsed = 0
            leader = m.from
            log.commit(to: min(heartbeat.commit, log.lastIndex))
            send(to: m.from, .heartbeatResponse(HeartbeatResponse(readRound: heartbeat.readRound)))
        case .snapshotChunk(let chunk):
            electionElapsed = 0
            leader = m.from
            handleSnapshotChunk(from: m.from, chunk)
        case .timeoutNow:
            campaign(.transfer)
        default:
            break
        }
    }

    mutating func handleAppend(from leaderID: NodeID, _ request: AppendRequest) {
        if request.prevLogIndex < log.committed {
            // Everything up to our commit index matches any leader; say so and let it move on.
            send(to: leaderID, .appendResponse(AppendResponse(success: true, matchIndex: log.committed)))
            return
        }
        guard log.matchTerm(request.prevLogIndex, request.prevLogTerm) else {
            let probe = min(request.prevLogIndex, log.lastIndex)
            let hint = log.lastIndex(atOrBelow: probe, withTermAtMost: request.prevLogTerm)
            send(to: leaderID, .appendResponse(AppendResponse(
                success: false, rejectIndex: request.prevLogIndex,
                hintIndex: hint, hintTerm: log.term(at: hint) ?? 0)))
            return
        }
        let lastNew = request.prevLogIndex + LogIndex(request.entries.count)
        if case .conflictsWithCommitted(let index) = log.merge(
            request.entries, truncateAtFirstEntry: config.testingFaults.truncateAtFirstEntry) {
            violation("node \(id): leader \(leaderID) term \(term) sent entries conflicting with committed index \(index)")
            return
        }
        log.commit(to: min(request.leaderCommit, lastNew, log.lastIndex))
        send(to: leaderID, .appendResponse(AppendResponse(success: true, matchIndex: lastNew)))
    }

    mutating func handleSnapshotChunk(from leaderID: NodeID, _ chunk: SnapshotChunk) {
        let meta = chunk.metadata
        func reply(_ next: Int, accepted: Bool, installed: Bool) {
            send(to: leaderID, .snapshotResponse(SnapshotResponse(
                snapshotIndex: meta.index, nextOffset: next, accepted: accepted, installed: installed)))
        }
        if meta.index <= log.committed {
            // We already hold everything the snapshot covers.
            incomingSnapshot = nil
            reply(0, accepted: true, installed: true)
            return
        }
        if chunk.offset == 0 { incomingSnapshot = (meta, []) }
        guard var incoming = incomingSnapshot, incoming.metadata == meta,
              chunk.offset == incoming.data.count else {
            let expected = incomingSnapshot.map { $0.metadata == meta ? $0.data.count : 0 } ?? 0
            reply(expected, accepted: false, installed: false)
            return
        }
        incomingSnapshot = nil // drop the stored copy first, or the append below copies the buffer
        incoming.data.append(contentsOf: chunk.data)
        guard chunk.done else {
            incomingSnapshot = incoming
            reply(incoming.data.count, accepted: true, installed: false)
            return
        }
        guard incoming.data.count == chunk.totalSize else {
            reply(0, accepted: false, installed: false)
            return
        }
        if log.matchTerm(meta.index, meta.term) {
            // Our log already holds the snapshot's last entry, so everything before matches too.
            log.commit(to: meta.index)
        } else {
            let snap = Snapshot(metadata: meta, data: incoming.data)
            log.restore(meta)
            membership = meta.membership
            membershipHistory = [(meta.index, meta.membership)]
            snapshot = snap
            pendingSnapshot = snap
        }
        // Sent after the snapshot is durable (Ready's order), so the leader may count it.
        reply(chunk.totalSize, accepted: true, installed: true)
    }
}
