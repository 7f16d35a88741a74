import Routing
import SchedulerCore
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

    @Test func aRequestSentAndDoneBetweenTwoReportsStopsCountingAsSentSinceTheReport() {
        var soft = fresh()
        let start = ContinuousClock.now
        soft.assigned("a", chain: [], request: "old", at: start - .seconds(1))  // before the report: the report counts it
        soft.report("a", load: EngineLoad(running: 1, waiting: 0, kvUsage: 0), healthy: true, at: start)
        soft.assigned("a", chain: [], request: "quick", tokens: 300, at: start + .milliseconds(10))
        soft.assigned("a", chain: [], request: "long", tokens: 2_000, at: start + .milliseconds(20))
        #expect(soft.sentSinceReport["a"] == .init(requests: 2, tokens: 2_300))
        soft.finished("a", request: "quick")
        soft.finished("a", request: "old")
        #expect(soft.sentSinceReport["a"]?.requests == 1 && soft.inFlight["a"] == 1)
        let view = soft.view(of: InstanceRecordFixture.record("a"), now: start + .milliseconds(30))
        #expect(view.inFlightSinceReport == 1 && view.sentSinceReportTokens == 2_000)
        // The next report counts what is left.
        soft.report("a", load: EngineLoad(running: 1, waiting: 0, kvUsage: 0), healthy: true, at: start + .milliseconds(250))
        #expect(soft.view(of: InstanceRecordFixture.record("a"), now: start + .milliseconds(260)).sentSinceReportTokens == 0)
    }

    @Test func theLeaderCountsEachAssignmentsPromptWorkAndEachSessionsInstance() {
        var soft = fresh()
        let start = soft.epoch
        soft.addPrefill("a", tokens: 5_000, at: start)
        let view = soft.view(of: InstanceRecordFixture.record("a"), now: start + .milliseconds(100))
        // 10,000 tokens a second until the engine says otherwise: 1,000 computed in 0.1 s.
        #expect(abs(view.prefillBacklogTokens - 4_000) < 1e-6 && view.prefillTokensPerSecond == 10_000)
        soft.sessions.record("conversation-1", on: "a")
        #expect(soft.sessions.instance(of: "conversation-1") == "a")
    }
}

enum InstanceRecordFixture {
    static func record(_ id: String) -> SchedulerCore.InstanceRecord {
        SchedulerCore.InstanceRecord(id: id, endpointURL: "http://127.0.0.1:9/\(id)", model: "m")
    }
}
