@testable import Raft
import XCTest

/// Node identity: a leader claims each member's incarnation, and from then on a node that comes
/// back under a claimed id as another incarnation (its disk wiped: votes and log forgotten)
/// neither votes nor campaigns until an operator removes it and adds it back.
final class IdentityTests: XCTestCase {
    static func incarnation(_ id: NodeID, generation: UInt64 = 1) -> UInt64 { id << 32 | generation }

    private func cluster() -> TestCluster {
        TestCluster(3) { $0.incarnation = IdentityTests.incarnation($0.id) }
    }

    /// Node `id` loses its disk and restarts as a new incarnation, knowing only its config.
    private func wipe(_ id: NodeID, in c: inout TestCluster) {
        var config = c.nodes[id]!.config
        config.incarnation = Self.incarnation(id, generation: 2)
        config.membership = Membership(voters: [1, 2, 3])
        c.storage[id] = MemoryStorage()
        c.nodes[id] = try! RaftNode(config: config, persisted: .init())
        c.inFlight.removeAll { $0.to == id }
    }

    private var claimedAll: [NodeID: UInt64] {
        [1: Self.incarnation(1), 2: Self.incarnation(2), 3: Self.incarnation(3)]
    }

    func testTheLeaderClaimsEveryMembersIncarnationOneAtATime() throws {
        var c = cluster()
        c.elect(1)
        c.tickAll(times: 3)
        for id in c.ids { XCTAssertEqual(c.nodes[id]!.membership.incarnations, claimedAll, "node \(id)") }
        // Each claim is a membership entry of its own: three of them after the no-op.
        let claims = c.log(1).filter { $0.kind == .membership }.compactMap { Membership(encoded: $0.data) }
        XCTAssertEqual(claims.map(\.incarnations.count), [1, 2, 3])
        XCTAssertEqual(claims.first?.incarnations[1], Self.incarnation(1), "the leader claims itself first")
    }

    func testAWipedVoterNeitherCountsNorCampaignsUntilReplaced() throws {
        var c = cluster()
        c.elect(1)
        c.tickAll(times: 3)
        try c.propose(1, "committed on all three")
        c.stabilize()
        wipe(3, in: &c)
        c.isolate(1)

        // 2 asks; the wiped 3 knows no claims and grants, but 2 does not count that vote.
        c.nodes[2]!.campaign(.election)
        c.stabilize()
        XCTAssertNotEqual(c.nodes[2]!.role, .leader, "a wiped disk's vote made a leader")
        // 3 campaigns on its empty log; 2 drops its requests, so not even 2's term moves.
        let term2 = c.nodes[2]!.term
        c.nodes[3]!.campaign(.election)
        c.stabilize()
        XCTAssertNotEqual(c.nodes[3]!.role, .leader)
        XCTAssertEqual(c.nodes[2]!.term, term2)

        // With 1 back, 1 and 2 elect; 3 copies the log, learns it is claimed as another
        // incarnation, and from then on never campaigns.
        c.heal()
        c.tickAll(times: 4 * c.nodes[1]!.config.electionTicks)
        let leader = try XCTUnwrap(c.leader())
        XCTAssertNotEqual(leader, 3)
        XCTAssertEqual(c.nodes[3]!.membership.incarnations[3], Self.incarnation(3), "still claimed as the old disk")
        XCTAssertEqual(c.log(3), c.log(leader))
        XCTAssertFalse(c.nodes[3]!.isPromotable)
        let other: NodeID = leader == 1 ? 2 : 1
        c.isolate(other)
        try c.propose(leader, "needs 3, which cannot vote")
        c.stabilize()
        XCTAssertEqual(c.log(3).last?.text, "needs 3, which cannot vote", "3 still stores entries")
        XCTAssertGreaterThanOrEqual(c.nodes[3]!.lastIndex, c.nodes[leader]!.lastIndex)
        c.heal()
        c.stabilize()

        // The operator replaces it: remove, add back as a learner (the leader claims the new
        // incarnation as soon as it hears from it), promote. Then it counts again.
        for change in [MembershipChange.remove(3), .addLearner(3)] {
            try c.nodes[leader]!.proposeMembershipChange(change)
            c.stabilize()
        }
        c.tickAll(times: 3)
        XCTAssertEqual(c.nodes[leader]!.membership.incarnations[3], Self.incarnation(3, generation: 2))
        try c.nodes[leader]!.proposeMembershipChange(.promote(3))
        c.stabilize()
        XCTAssertTrue(c.nodes[3]!.isPromotable)
        c.isolate(other)
        try c.propose(leader, "3 counts again")
        c.stabilize()
        XCTAssertEqual(c.nodes[leader]!.commitIndex, c.nodes[leader]!.lastIndex)
    }

    /// The wiped disk's vote is exactly what would lose a committed entry: 3 acknowledged an entry
    /// 2 never saw, forgot it with its disk, and would then help elect 2. With the testing fault
    /// `ignoreIncarnations` that happens; without it 2 does not count the vote. (raft-sim's
    /// `--bug ignore-incarnations` reaches this rarely, 1 seed in 200; this builds it.)
    func testAWipedDisksVoteWouldElectALeaderMissingACommittedEntry() throws {
        func run(ignoringIncarnations: Bool) throws -> (leader: Bool, entries: [String]) {
            var c = TestCluster(3) {
                $0.incarnation = IdentityTests.incarnation($0.id)
                $0.testingFaults.ignoreIncarnations = ignoringIncarnations
            }
            c.elect(1)
            c.tickAll(times: 3)
            c.isolate(2)
            try c.propose(1, "on 1 and 3 only")
            c.stabilize()
            XCTAssertEqual(c.nodes[1]!.commitIndex, c.nodes[1]!.lastIndex, "committed by 1 and 3")
            wipe(3, in: &c)
            c.heal()
            c.isolate(1)
            c.nodes[2]!.campaign(.election)
            c.stabilize()
            return (c.nodes[2]!.role == .leader, c.log(2).map(\.text))
        }
        let mended = try run(ignoringIncarnations: false)
        XCTAssertFalse(mended.leader, "a wiped disk's vote made a leader")
        let broken = try run(ignoringIncarnations: true)
        XCTAssertTrue(broken.leader, "with the fault the wiped vote elects 2")
        XCTAssertFalse(broken.entries.contains("on 1 and 3 only"), "and 2's log lacks a committed entry")
    }

    func testAClaimIsRefusedForAnotherIncarnationAndAnUnclaimedLearnerIsNotPromoted() throws {
        let claimed = Membership(voters: [1, 2, 3], incarnations: [3: 7])
        XCTAssertThrowsError(try claimed.applying(.claim(3, incarnation: 8)))
        XCTAssertThrowsError(try claimed.applying(.claim(3, incarnation: 7)))
        XCTAssertThrowsError(try claimed.applying(.claim(4, incarnation: 1)), "not a member")
        XCTAssertThrowsError(try claimed.applying(.claim(2, incarnation: 0)))
        XCTAssertEqual(try claimed.applying(.remove(3)).incarnations, [:], "removal forgets the claim")
        XCTAssertTrue(claimed.mayVote(3, incarnation: 7))
        XCTAssertFalse(claimed.mayVote(3, incarnation: 8))
        XCTAssertTrue(claimed.mayVote(2, incarnation: 99), "unclaimed: plain Raft")

        var c = cluster()
        c.elect(1)
        c.tickAll(times: 3)
        var config = RaftConfig(id: 4, voters: [1, 2, 3])
        config.membership.learners = [4]
        config.incarnation = Self.incarnation(4)
        c.storage[4] = MemoryStorage()
        c.nodes[4] = try RaftNode(config: config, persisted: .init())
        c.isolate(4)
        try c.nodes[1]!.proposeMembershipChange(.addLearner(4))
        c.stabilize()
        XCTAssertThrowsError(try c.nodes[1]!.proposeMembershipChange(.promote(4)), "not heard, not claimed")
        c.heal()
        c.tickAll(times: 3)
        XCTAssertEqual(c.nodes[1]!.membership.incarnations[4], Self.incarnation(4))
        XCTAssertNoThrow(try c.nodes[1]!.proposeMembershipChange(.promote(4)))
    }

    /// The leader hears another incarnation under a follower's id and starts replication to it
    /// over: the match index the old disk had acknowledged no longer holds.
    func testTheLeaderReplicatesAWipedFollowerFromScratch() throws {
        var c = cluster()
        c.elect(1)
        c.tickAll(times: 3)
        for n in 0..<5 { try c.propose(1, "entry \(n)") }
        c.stabilize()
        wipe(3, in: &c)
        XCTAssertEqual(c.nodes[3]!.lastIndex, 0)
        c.tickAll(times: 3)
        XCTAssertEqual(c.leader(), 1, "no election: 1 led throughout")
        XCTAssertEqual(c.log(3), c.log(1))
        XCTAssertEqual(c.nodes[1]!.progress[3]?.incarnation, Self.incarnation(3, generation: 2))
    }
}
