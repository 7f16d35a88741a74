/// Elections: timeouts, pre-vote, voting, and the transitions between roles.
extension RaftNode {
    enum CampaignKind { case preElection, election, transfer }

    mutating func tickElection() {
        electionElapsed += 1
        if isPromotable, electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            campaign(config.preVote ? .preElection : .election)
        }
    }

    /// Clears per-term state; `term` moves only forward and a new term forgets the vote.
    mutating func reset(term newTerm: Term) {
        if newTerm != term {
            precondition(newTerm > term, "raft: term moving backwards")
            term = newTerm
            vote = 0
        }
        leader = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        resetElectionTimeout()
        votes = [:]
        transferTarget = 0
        abandonReads()
        progress = [:]
    }

    mutating func becomeFollower(term newTerm: Term, leader newLeader: NodeID) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    mutating func campaign(_ kind: CampaignKind) {
        guard isPromotable else { return }
        let voteTerm: Term
        if kind == .preElection { preVotesStarted += 1 } else { electionsStarted += 1 }
        if kind == .preElection {
            // A pre-candidate keeps its term and vote: nobody's term moves unless it could win.
            abandonReads()
            role = .preCandidate
            leader = 0
            votes = [:]
            electionElapsed = 0
            resetElectionTimeout()
            voteTerm = term + 1
        } else {
            reset(term: term + 1)
            role = .candidate
            vote = id
            voteTerm = term
        }
        votes[id] = true
        if membership.isQuorum(grantedVotes) {
            if kind == .preElection { campaign(.election) } else { becomeLeader() }
            return
        }
        let request = VoteRequest(preVote: kind == .preElection, lastLogIndex: log.lastIndex,
                                  lastLogTerm: log.lastTerm, leadershipTransfer: kind == .transfer)
        for peer in peers where membership.voters.contains(peer) {
            send(to: peer, term: voteTerm, .voteRequest(request))
        }
    }

    /// A connection to `peer` has just come up. A pre-candidate asks it at once for its pre-vote
    /// instead of at its next election timeout: its earlier request went nowhere while the peer
    /// was down, and when that peer completes a quorum (a restarted node rejoining a lone
    /// survivor) this saves up to a whole election timeout. A pre-vote changes no one's term or
    /// vote, so asking again is always safe; real vote requests are not repeated here (the
    /// pre-vote round that follows sends them over the live connection).
    mutating func askAgainAfterReconnect(_ peer: NodeID) {
        guard role == .preCandidate, peer != id, membership.voters.contains(peer), votes[peer] == nil else { return }
        let request = VoteRequest(preVote: true, lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm, leadershipTransfer: false)
        send(to: peer, term: term + 1, .voteRequest(request))
    }

    var grantedVotes: [NodeID] { votes.filter { $0.value }.map(\.key) }
    var rejectedVotes: [NodeID] { votes.filter { !$0.value }.map(\.key) }

    mutating func handleVoteRequest(_ m: Message, _ request: VoteRequest) {
        // We may vote again for whom we voted; otherwise only if we have not voted and follow
        // nobody; a pre-vote for a later term is granted on the log alone.
        let canVote = vote == m.from || (vote == 0 && leader == 0) || (request.preVote && m.term > term)
        // A wiped disk under a claimed id neither grants votes nor gets them. Otherwise a vote
        // may go to a candidate this node does not know as a voter yet (one promoted by a change
        // not applied here): it counts only where the candidate's membership says so.
        let bothVoters = mayVoteItself && isNotDisowned(id, incarnation: config.incarnation)
            && isNotDisowned(m.from, incarnation: m.incarnation)
        let upToDate = config.testingFaults.skipLogUpToDateCheck
            || log.isUpToDate(lastIndex: request.lastLogIndex, lastTerm: request.lastLogTerm)
        if canVote && upToDate && bothVoters {
            // A granted pre-vote carries the asked-for term so the pre-candidate counts it.
            send(to: m.from, term: request.preVote ? m.term : term,
                 .voteResponse(VoteResponse(preVote: request.preVote, granted: true)))
            if !request.preVote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            send(to: m.from, .voteResponse(VoteResponse(preVote: request.preVote, granted: false)))
        }
    }

    mutating func handleVoteResponse(_ m: Message, _ response: VoteResponse) {
        guard response.preVote == (role == .preCandidate) else { return }
        // A vote from an incarnation the membership has not claimed for that id is no vote.
        guard mayVote(m.from, incarnation: m.incarnation) else { return }
        votes[m.from] = response.granted
        if membership.isQuorum(grantedVotes) {
            if role == .preCandidate { campaign(.election) } else { becomeLeader() }
        } else if membership.isQuorum(rejectedVotes) {
            becomeFollower(term: term, leader: 0)
        }
    }

    mutating func becomeLeader() {
        precondition(role == .candidate, "raft: only a candidate becomes leader")
        role = .leader
        leader = id
        heartbeatElapsed = 0
        electionElapsed = 0
        progress = [:]
        for member in membership.members {
            var pr = Progress(next: log.lastIndex + 1, maxInflight: config.maxInflightMessages)
            if member == id {
                pr.match = log.stableIndex
                pr.state = .replicate
            }
            pr.recentActive = true
            progress[member] = pr
        }
        // A change an earlier leader appended may still be in the log, uncommitted: no new one
        // until everything this leader holds is applied (etcd's pendingConfIndex).
        pendingMembershipIndex = log.lastIndex
        // §5.4.2: entries of earlier terms commit only once an entry of this term does.
        log.append(Entry(index: log.lastIndex + 1, term: term, kind: .noop))
        broadcastAppend(allowEmpty: true)
    }

    /// Leader lease (with check-quorum): a node that heard from a leader within the minimum
    /// election timeout ignores requests to vote for someone else.
    var inLease: Bool {
        config.checkQuorum && leader != 0 && electionElapsed < config.electionTicks
    }

    mutating func abandonReads() {
        abandonedReads.append(contentsOf: pendingReads.map(\.context))
        abandonedReads.append(contentsOf: readsAwaitingCommit)
        pendingReads = []
        readsAwaitingCommit = []
    }
}
