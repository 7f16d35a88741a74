import Routing
import Testing

@testable import Scheduler

/// The leader's in-flight counts, kept per request: repeats from a gateway cannot inflate them.
@Suite struct InFlightCountingTests {
    private func fresh() -> LeaderSoftState { LeaderSoftState(policy: PolicyConfiguration(), seed: 1) }

    @Test func aFinishThatComesTwiceReleasesOnce() {
        var soft = fresh()
        soft.assigned("a", chain: [], request: "r1")
        soft.assigned("a", chain: [], request: "r2")
        soft.finished("a", request: "r1")
        soft.finished("a", request: "r1")
        #expect(soft.inFlight["a"] == 1)
    }

    @Test func aRepeatedScheduleCallSupersedesTheAssignmentItsGatewayNeverGot() {
        var soft = fresh()
        // The first answer was late; the gateway asked again and got the pair elsewhere.
        soft.scheduling("r1")
        soft.assigned("p1", chain: [], request: "r1")
        soft.assigned("d1", chain: [], request: "r1")
        soft.scheduling("r1")
        soft.assigned("p2", chain: [], request: "r1")
        soft.assigned("d1", chain: [], request: "r1")
        #expect(soft.inFlight["p1"] == 0 && soft.inFlight["p2"] == 1 && soft.inFlight["d1"] == 1)
        soft.finished("p2", request: "r1")
        soft.finished("d1", request: "r1")
        // A finish for the superseded assignment changes nothing.
        soft.finished("p1", request: "r1")
        #expect(soft.inFlight.values.allSatisfy { $0 == 0 } && soft.slots.isEmpty)
    }
}
