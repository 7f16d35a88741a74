@testable import Raft
import Seeded
import XCTest

/// Single-server membership changes: a learner catches up without voting, is promoted, and a
/// voter is removed; one change at a time; the membership survives restarts and compaction.
final class MembershipTests: XCTestCase {
    /// Starts node `id` as a newcomer: it knows the current voters and that it is a learner.
    private func addNewcomer(_ id: NodeID, to c: inout TestCluster, voters: Set<NodeID>) {
        var config = RaftConfig(id: id, voters: voters)
        config.membership.learners = [id]
        config.randomSeed = id
        c.storage[id] = MemoryStorage()
        c.nodes[id] = try! RaftNode(config: config, persisted: .init())
    }

    private func change(_ c: inout TestCluster, at leader: NodeID, _ change: MembershipChange,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNoThrow(try c.nodes[leader]!.proposeMembershipChange(change), "\(change)", file: file, line: line)
        c.stabilize()
    }

    func testALearnerCopiesTheLogWithoutVotingAndCountsOnlyOncePromoted() throws {
        var c = TestCluster(3)
        c.elect(1)
        try c.propose(1, "a")
        c.stabilize()
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        change(&c, at: 1, .addLearner(4))
        for id in c.ids { XCTAssertEqual(c.nodes[id]!.membership, Membership(voters: [1, 2, 3], learners: [4]), "node \(id)") }
        XCTAssertEqual(c.log(4), c.log(1), "the learner holds the whole log")
        XCTAssertEqual(c.nodes[4]!.commitIndex, c.nodes[1]!.commitIndex)

        // A learner counts towards no quorum: with 2 and 3 cut off, nothing commits.
        c.isolate(2)
        c.isolate(3)
        try c.propose(1, "b")
        c.stabilize()
        XCTAssertEqual(c.log(4).last?.text, "b")
        XCTAssertLessThan(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex)
        // Nor does it campaign, however long it hears nothing.
        c.heal()
        c.isolate(4)
        let term = c.nodes[4]!.term
        c.tick(4, times: 10 * c.nodes[4]!.config.electionTicks)
        c.stabilize()
        XCTAssertEqual(c.nodes[4]!.role, .follower)
        XCTAssertEqual(c.nodes[4]!.term, term)
        c.heal()
        c.tickAll(times: 2)
        XCTAssertEqual(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex)

        change(&c, at: 1, .promote(4))
        for id in c.ids { XCTAssertEqual(c.nodes[id]!.membership, Membership(voters: [1, 2, 3, 4]), "node \(id)") }
        // Four voters: a quorum is three, and node 4 is one of them.
        c.isolate(2)
        c.isolate(3)
        try c.propose(1, "c")
        c.stabilize()
        XCTAssertLessThan(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex, "1 and 4 are two of four")
        c.heal()
        c.isolate(3)
        try c.propose(1, "d")
        c.stabilize()
        XCTAssertEqual(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex, "1, 2 and 4 are three of four")
    }

    func testALearnerNotHeardFromLatelyIsNotPromotedNorIsLeadershipTransferredDuringAChange() throws {
        var c = TestCluster(3)
        c.elect(1)
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        change(&c, at: 1, .addLearner(4))
        c.isolate(4)
        // Check-quorum rounds clear `recentActive`; the others answer, node 4 cannot.
        c.tickAll(times: 2 * c.nodes[1]!.config.electionTicks + 1)
        XCTAssertEqual(c.leader(), 1)
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.promote(4)), "caught up, but silent")
        c.heal()
        c.tickAll(times: 2)
        try c.nodes[1]!.proposeMembershipChange(.promote(4))
        XCTAssertThrowsError(try c.nodes[1]!.transferLeadership(to: 2), "a change is pending") { error in
            guard case RaftError.membershipChangePending = error else { return XCTFail("\(error)") }
        }
        c.stabilize()
        XCTAssertNoThrow(try c.nodes[1]!.transferLeadership(to: 2))
    }

    func testOneChangeAtATimeAndOnlyOnceTheLeaderHasCommittedInItsTerm() throws {
        var c = TestCluster(3)
        c.electBeforeItsNoopCommits(1)
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.addLearner(4)), "its no-op has not committed") { error in
            guard case RaftError.membershipChangePending = error else { return XCTFail("\(error)") }
        }
        c.stabilize()
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        addNewcomer(5, to: &c, voters: [1, 2, 3])
        try c.nodes[1]!.proposeMembershipChange(.addLearner(4))
        XCTAssertTrue(c.nodes[1]!.membershipChangePending)
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.addLearner(5))) { error in
            guard case RaftError.membershipChangePending = error else { return XCTFail("\(error)") }
        }
        c.stabilize()
        XCTAssertFalse(c.nodes[1]!.membershipChangePending)
        change(&c, at: 1, .addLearner(5))
        XCTAssertEqual(c.nodes[5]!.membership.learners, [4, 5])
        XCTAssertThrowsError(try c.nodes[2]!.proposeMembershipChange(.remove(5)), "only the leader changes membership")
    }

    func testNonsenseChangesAreRefused() throws {
        var c = TestCluster(3)
        c.elect(1)
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.addLearner(2)), "already a member")
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.addLearner(0)), "0 is nobody")
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.promote(2)), "already votes")
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.promote(9)), "not a learner")
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.remove(9)), "not a member")
        XCTAssertEqual(c.nodes[1]!.lastIndex, 1, "nothing was appended")
        var single = TestCluster(1)
        single.elect(1)
        XCTAssertThrowsError(try single.nodes[1]!.proposeMembershipChange(.remove(1)), "the last voter")
    }

    func testALearnerThatHasNotCaughtUpIsNotPromoted() throws {
        var c = TestCluster(3)
        c.elect(1)
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        c.isolate(4)
        change(&c, at: 1, .addLearner(4))
        for index in 0..<(c.nodes[1]!.config.maxEntriesPerMessage + 1) { try c.propose(1, "e\(index)") }
        c.stabilize()
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.promote(4))) { error in
            guard case RaftError.invalidRequest(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("has not caught up"), why)
        }
        c.heal()
        c.tickAll(times: 3)
        change(&c, at: 1, .promote(4))
        XCTAssertEqual(c.nodes[1]!.membership.voters, [1, 2, 3, 4])
    }

    func testARemovedLeaderStepsDownAndTheOthersGoOnWithoutIt() throws {
        var c = TestCluster(3)
        c.elect(1)
        try c.propose(1, "a")
        change(&c, at: 1, .remove(1))
        XCTAssertNotEqual(c.nodes[1]!.role, .leader)
        for id in c.ids { XCTAssertEqual(c.nodes[id]!.membership, Membership(voters: [2, 3]), "node \(id)") }
        // The removed node neither campaigns nor disturbs the others.
        c.tickAll(times: 3 * c.nodes[2]!.config.electionTicks)
        let leader = try XCTUnwrap(c.leader())
        XCTAssertTrue([2, 3].contains(leader))
        XCTAssertEqual(c.nodes[1]!.role, .follower)
        try c.propose(leader, "b")
        c.stabilize()
        XCTAssertEqual(c.nodes[leader]!.commitIndex, c.nodes[leader]!.lastIndex)
        // A quorum of two voters needs both: with one cut off nothing commits.
        let other: NodeID = leader == 2 ? 3 : 2
        c.isolate(other)
        try c.propose(leader, "c")
        c.stabilize()
        XCTAssertLessThan(c.nodes[leader]!.commitIndex, c.nodes[leader]!.lastIndex)
    }

    func testARemovedFollowerCampaigningCannotRaiseTheOthersTerms() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.isolate(3)
        change(&c, at: 1, .remove(3))
        XCTAssertEqual(c.nodes[3]!.membership.voters, [1, 2, 3], "node 3 never heard of its removal")
        c.heal()
        let term = c.nodes[1]!.term
        for _ in 0..<5 {
            c.nodes[3]!.campaign(.election)
            c.stabilize()
        }
        XCTAssertEqual(c.nodes[1]!.term, term)
        XCTAssertEqual(c.nodes[2]!.term, term)
        XCTAssertEqual(c.leader(), 1)
    }

    func testReplacingAVoterKeepsTheGroupAvailableAtEveryStep() throws {
        var c = TestCluster(3)
        c.elect(1)
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        var expected = 1
        func commitOne(_ label: String) throws {
            try c.propose(1, label)
            c.stabilize()
            expected += 1
            XCTAssertEqual(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex, "committed after \(label)")
        }
        for step in [MembershipChange.addLearner(4), .promote(4), .remove(3)] {
            change(&c, at: 1, step)
            try commitOne("after \(step)")
        }
        XCTAssertEqual(c.nodes[4]!.membership, Membership(voters: [1, 2, 4]))
        c.isolate(3)
        try commitOne("without node 3")
        c.isolate(2)
        try c.propose(1, "1 and 4 are two of three")
        c.stabilize()
        XCTAssertEqual(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex)
    }

    func testMembershipSurvivesRestartAndCompactionRecordsItsOwnIndex() throws {
        var c = TestCluster(3)
        c.elect(1)
        try c.propose(1, "before")
        c.stabilize()
        let beforeChange = c.nodes[1]!.appliedIndex
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        change(&c, at: 1, .addLearner(4))
        try c.propose(1, "after")
        c.stabilize()

        // A snapshot taken through an index before the change records the old membership.
        let old = try c.nodes[2]!.compact(through: beforeChange, data: [1])
        XCTAssertEqual(old.metadata.membership, Membership(voters: [1, 2, 3]))
        c.storage[2]!.saveCompactionSnapshot(old)
        c.restart(2)
        c.flush()
        XCTAssertEqual(c.nodes[2]!.membership, Membership(voters: [1, 2, 3], learners: [4]),
                       "the entries after the snapshot are applied again on restart")
        // And one through the end records the new one.
        let new = try c.nodes[2]!.compact(through: c.nodes[2]!.appliedIndex, data: [2])
        XCTAssertEqual(new.metadata.membership, Membership(voters: [1, 2, 3], learners: [4]))
        c.restart(1)
        c.flush()
        XCTAssertEqual(c.nodes[1]!.membership, Membership(voters: [1, 2, 3], learners: [4]))
    }

    func testAMembershipEntryThatDoesNotDecodeIsSkippedNotFatal() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.nodes[1]!.log.append(Entry(index: c.nodes[1]!.lastIndex + 1, term: c.nodes[1]!.term, kind: .membership, data: [9, 9]))
        c.nodes[1]!.broadcastPending = true
        c.stabilize()
        for id in c.ids {
            XCTAssertEqual(c.nodes[id]!.membership, Membership(voters: [1, 2, 3]), "node \(id)")
            XCTAssertEqual(c.nodes[id]!.undecodableMembershipEntries, 1, "node \(id)")
        }
    }

    func testTheEncodingRoundTripsAndRefusesWhatItCannotRead() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            var voters = Set<NodeID>()
            var learners = Set<NodeID>()
            for _ in 0..<(1 + rng.next() % 6) { voters.insert(1 + rng.next() % 20) }
            for _ in 0..<(rng.next() % 4) {
                let id = 21 + rng.next() % 20
                learners.insert(id)
            }
            var membership = Membership(voters: voters, learners: learners)
            for id in membership.members where rng.next() % 2 == 0 { membership.incarnations[id] = 1 + rng.next() % 1000 }
            for id in membership.members where rng.next() % 3 == 0 { membership.addresses[id] = "node-\(id).example:\(rng.next() % 65536)" }
            XCTAssertEqual(Membership(encoded: membership.encoded), membership)
            // Every strict prefix and any byte appended are refused.
            let bytes = membership.encoded
            let cut = Int(rng.next() % UInt64(bytes.count))
            XCTAssertNil(Membership(encoded: Array(bytes[..<cut])))
            XCTAssertNil(Membership(encoded: bytes + [0]))
        }
        XCTAssertNil(Membership(encoded: [3] + Membership(voters: [1]).encoded.dropFirst()), "an unknown version")
        XCTAssertNil(Membership(encoded: [2] + Membership(voters: [1]).encoded.dropFirst()), "version 2 without its claims")
        XCTAssertNil(Membership(encoded: Membership(voters: [1], incarnations: [2: 5]).encoded), "a claim of a non-member")
        XCTAssertNil(Membership(encoded: Membership(voters: [1], incarnations: [1: 0]).encoded), "incarnation 0")
        XCTAssertNil(Membership(encoded: Membership(voters: [1], addresses: [1: ""]).encoded), "an empty address")
        XCTAssertNil(Membership(encoded: Membership(voters: [1], addresses: [1: String(repeating: "a", count: 256)]).encoded), "a long address")
        XCTAssertEqual(Membership(voters: [1]).encoded.first, 1, "nothing claimed: still version 1")
        XCTAssertThrowsError(try Membership(voters: [1]).applying(.addLearner(2, address: String(repeating: "a", count: 256))))
        XCTAssertEqual(try Membership(voters: [1]).applying(.addLearner(2, address: "h:1")).addresses, [2: "h:1"])
        XCTAssertEqual(try Membership(voters: [1, 2], addresses: [2: "h:1"]).applying(.remove(2)).addresses, [:])
        XCTAssertNil(Membership(encoded: Membership(voters: [1], learners: [1]).encoded), "a voter that is also a learner")
        XCTAssertNil(Membership(encoded: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "no voters")
        XCTAssertNil(Membership(encoded: [1, 255, 255, 255, 255, 255, 255, 255, 255]), "a count larger than the bytes")
    }

    /// A node that has not applied a newcomer's promotion still follows it once it leads, and
    /// learns of the promotion from it (a node that took messages only from the members it
    /// knows would drop every append of the new leader and never catch up).
    func testANodeThatMissedANewcomersPromotionFollowsItWhenItLeads() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.isolate(3)
        addNewcomer(4, to: &c, voters: [1, 2, 3])
        change(&c, at: 1, .addLearner(4))
        c.tickAll(times: 2)
        change(&c, at: 1, .promote(4))
        XCTAssertEqual(c.nodes[1]!.membership, Membership(voters: [1, 2, 3, 4]))
        XCTAssertEqual(c.nodes[3]!.membership, Membership(voters: [1, 2, 3]), "3 missed both changes")
        try c.nodes[1]!.transferLeadership(to: 4)
        c.stabilize()
        XCTAssertEqual(c.leader(), 4)
        c.heal()
        c.tickAll(times: 2)
        XCTAssertEqual(c.leader(), 4)
        XCTAssertEqual(c.nodes[3]!.leader, 4)
        XCTAssertEqual(c.nodes[3]!.membership, Membership(voters: [1, 2, 3, 4]))
        XCTAssertEqual(c.log(3), c.log(4))
        // And it counts: with 1 cut off, 4, 2 and 3 are three of four.
        c.isolate(1)
        try c.propose(4, "after")
        c.stabilize()
        XCTAssertEqual(c.nodes[4]!.commitIndex, c.nodes[4]!.lastIndex)
        XCTAssertEqual(c.nodes[3]!.commitIndex, c.nodes[4]!.lastIndex)
    }

    /// Refusing a candidate whose log is behind moves a node to the candidate's term but does not
    /// restart its election timer (Raft, figure 2): the up-to-date node must still time out first.
    func testRefusingABehindCandidateDoesNotRestartTheElectionTimer() throws {
        // Neither pre-vote nor check-quorum's lease, which would each keep node 3's request away.
        var c = TestCluster(3) { $0.preVote = false; $0.checkQuorum = false }
        c.elect(1)
        c.isolate(3)
        try c.propose(1, "3 misses this")
        c.stabilize()
        c.isolate(1)
        c.tick(2, times: 4)
        let elapsed = c.nodes[2]!.electionElapsed
        c.nodes[3]!.campaign(.election)
        c.heal()
        c.isolate(1)
        c.stabilize()
        XCTAssertEqual(c.nodes[2]!.term, c.nodes[3]!.term, "2 took the candidate's term")
        XCTAssertEqual(c.nodes[2]!.vote, 0, "and refused it: its log is behind")
        XCTAssertEqual(c.nodes[2]!.electionElapsed, elapsed, "and its timer kept running")
    }

    /// A vote request below our term is refused at our term, so the candidate learns it (Raft,
    /// figure 2). Silence left a candidate that only we could complete a quorum with campaigning
    /// below our term for ever (raft-sim seed 7271).
    func testAVoteRequestBelowOurTermIsRefusedAtOurTerm() throws {
        var c = TestCluster(3) { $0.preVote = false }
        c.elect(1)
        c.isolate(1)
        c.nodes[2]!.campaign(.election)
        c.nodes[2]!.campaign(.election)
        c.flush()
        c.inFlight.removeAll()
        let higher = c.nodes[2]!.term
        c.heal()
        c.nodes[3]!.campaign(.election)
        c.flush()
        let request = try XCTUnwrap(c.inFlight.first { $0.to == 2 && $0.kindName == "voteRequest" })
        XCTAssertLessThan(request.term, higher)
        c.inFlight.removeAll()
        c.deliver(request)
        c.flush()
        let reply = try XCTUnwrap(c.inFlight.first { $0.to == 3 })
        guard case .voteResponse(let response) = reply.body else { return XCTFail("\(reply)") }
        XCTAssertFalse(response.granted)
        XCTAssertEqual(reply.term, higher, "the refusal carries our term")
        c.deliver(reply)
        XCTAssertEqual(c.nodes[3]!.term, higher, "and the candidate takes it")
        XCTAssertEqual(c.nodes[3]!.role, .follower)
    }

    /// Without check-quorum's lease a removed node that never learns of its removal campaigns for
    /// ever and raises the members' terms (thesis §4.2.3; raft-sim seed 2937), so a leader without
    /// it refuses to change membership at all.
    func testMembershipChangesNeedCheckQuorum() throws {
        var c = TestCluster(3) { $0.checkQuorum = false }
        c.elect(1)
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.remove(3))) { error in
            guard case RaftError.invalidRequest(let why) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("check-quorum"), why)
        }
        XCTAssertEqual(c.nodes[1]!.membership.voters, [1, 2, 3])
    }
}
