@testable import Raft
import XCTest

/// A lone survivor whose peers come back: the reconnect makes it ask at once.
final class ReconnectTests: XCTestCase {
    /// Leader 1 and follower 2 die; 3 is left pre-campaigning alone. When 2 is back, 3 wins as soon
    /// as its transport reports the connection, without waiting for another election timeout.
    func testALoneSurvivorAsksARejoiningPeerAtOnce() throws {
        var c = TestCluster(3)
        c.elect(1)
        try c.propose(1, "x")
        c.stabilize()
        c.isolate(1)
        c.cut.insert([2, 3])
        c.cut.insert([3, 2])
        // 3 times out and pre-campaigns into the void, more than once.
        c.tick(3, times: 4 * c.nodes[3]!.config.electionTicks)
        c.stabilize()
        XCTAssertEqual(c.nodes[3]!.role, .preCandidate)
        let termBefore = c.nodes[3]!.term

        // 2 restarts (a fresh process: it has heard from no leader) and the links come back.
        c.restart(2)
        c.cut.remove([2, 3])
        c.cut.remove([3, 2])
        c.nodes[3]!.peerReconnected(2)
        c.stabilize()
        XCTAssertEqual(c.nodes[3]!.role, .leader, "the survivor should win without another timeout")
        XCTAssertEqual(c.nodes[3]!.term, termBefore + 1, "one pre-vote round, then one real election")
        XCTAssertEqual(c.nodes[2]!.leader, 3)
    }

    /// Without the reconnect signal nothing happens until a timeout: the test above is not vacuous.
    func testWithoutTheSignalTheSurvivorWaitsForItsTimeout() throws {
        var c = TestCluster(3)
        c.elect(1)
        c.isolate(1)
        c.cut.insert([2, 3])
        c.cut.insert([3, 2])
        c.tick(3, times: 4 * c.nodes[3]!.config.electionTicks)
        c.stabilize()
        c.restart(2)
        c.cut.remove([2, 3])
        c.cut.remove([3, 2])
        c.stabilize()
        XCTAssertEqual(c.nodes[3]!.role, .preCandidate)
    }

    /// Only a pre-candidate asks again; a follower or a leader sends nothing on a reconnect.
    func testOthersSendNothingOnAReconnect() {
        var c = TestCluster(3)
        c.elect(1)
        c.stabilize()
        c.nodes[1]!.peerReconnected(2)
        c.nodes[2]!.peerReconnected(3)
        c.flush()
        XCTAssertTrue(c.inFlight.isEmpty)
    }
}
