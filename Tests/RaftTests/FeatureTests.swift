@testable import Raft
import XCTest

final class FeatureTests: XCTestCase {
    func testReadIndexWaitsForQuorumConfirmation() throws {
        var c = TestCluster(3)
        c.elect(1)
        try c.propose(1, "x")
        c.stabilize()
        try c.nodes[1]!.readIndex(context: 7)
        c.flush()
        XCTAssertTrue(c.readStates[1, default: []].isEmpty, "a read is served only after a quorum confirms leadership")
        c.stabilize()
        XCTAssertEqual(c.readStates[1], [ReadState(index: 2, context: 7)])
    }

    func testIsolatedLeaderAbandonsReads() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.isolate(1)
        try c.nodes[1]!.readIndex(context: 9)
        c.stabilize()
        XCTAssertTrue(c.readStates[1, default: []].isEmpty)
        c.tick(1, times: 2 * c.nodes[1]!.config.electionTicks)
        c.flush()
        XCTAssertEqual(c.abandonedReads[1], [9])
    }

    func testReadsBeforeTheFirstCommitOfTheTermWait() throws {
        var c = TestCluster(3)
        c.electBeforeItsNoopCommits(1)
        XCTAssertEqual(c.nodes[1]!.commitIndex, 0)
        try c.nodes[1]!.readIndex(context: 3)
        c.stabilize()
        XCTAssertEqual(c.readStates[1], [ReadState(index: 1, context: 3)])
    }

    func testLeadershipTransfer() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.isolate(3)
        try c.propose(1, "behind")
        c.stabilize()
        c.heal()
        try c.nodes[1]!.transferLeadership(to: 3)
        XCTAssertThrowsError(try c.propose(1, "refused during transfer"))
        c.tickAll(times: 3)
        XCTAssertEqual(c.leader(), 3, "the target catches up, is told to campaign, and wins")
        XCTAssertEqual(c.log(3).last?.kind, .noop)
    }

    /// The counters the scheduler exports: a leader found counts once per term, however many
    /// appends and heartbeats it then sends; campaigns count by kind.
    func testLeadersSeenAndCampaignsAreCounted() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.tickAll(times: 5)
        for id in c.ids { XCTAssertEqual(c.nodes[id]!.leadersSeen, 1, "node \(id)") }
        XCTAssertEqual(c.nodes[1]!.preVotesStarted, 1)
        XCTAssertEqual(c.nodes[1]!.electionsStarted, 1)
        XCTAssertEqual(c.nodes[2]!.electionsStarted, 0)
        try c.nodes[1]!.transferLeadership(to: 2)
        c.tickAll(times: 3)
        XCTAssertEqual(c.leader(), 2)
        for id in c.ids { XCTAssertEqual(c.nodes[id]!.leadersSeen, 2, "node \(id)") }
        XCTAssertEqual(c.nodes[2]!.electionsStarted, 1, "a transfer is an election without pre-vote")
        XCTAssertEqual(c.nodes[2]!.preVotesStarted, 0)
        // The same node winning again in a later term counts again.
        try c.nodes[2]!.transferLeadership(to: 1)
        c.tickAll(times: 3)
        try c.nodes[1]!.transferLeadership(to: 2)
        c.tickAll(times: 3)
        XCTAssertEqual(c.leader(), 2)
        XCTAssertEqual(c.nodes[3]!.leadersSeen, 4)
    }

    func testSingleNodeCommitsAlone() throws {
        var c = TestCluster(1)
        c.tickAll(times: 25)
        XCTAssertEqual(c.leader(), 1)
        try c.propose(1, "solo")
        c.stabilize()
        XCTAssertEqual(c.nodes[1]!.entry(at: c.nodes[1]!.commitIndex)?.text, "solo")
    }

    func testInvalidConfigNamesTheKey() {
        var config = RaftConfig(id: 4, voters: [1, 2, 3])
        XCTAssertThrowsError(try RaftNode(config: config)) { error in
            XCTAssertEqual("\(error)", "invalid raft config id: 4 is not a member [1, 2, 3]")
        }
        config = RaftConfig(id: 1, voters: [1, 2, 3])
        config.electionTicks = 1
        XCTAssertThrowsError(try RaftNode(config: config)) { error in
            XCTAssertTrue("\(error)".contains("electionTicks"))
        }
    }

    func testRestartReplaysCommittedEntries() throws {
        var c = TestCluster(3)
        c.elect(1)
        try c.propose(1, "kept")
        c.stabilize()
        c.tickAll(times: 2)
        c.restart(2)
        let ready = c.nodes[2]!.ready()
        XCTAssertEqual(ready.committedEntries.map(\.text).last, "kept", "a restarted node re-applies what was committed")
    }
}
