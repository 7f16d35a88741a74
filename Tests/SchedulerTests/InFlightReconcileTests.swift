import Routing
import Testing

@testable import Scheduler

/// The leader's in-flight counts heal against what the engines themselves report: a slot whose
/// `finish` never came is given back within a few reports, and a running request's never is.
@Suite struct InFlightReconcileTests {
    private let start = ContinuousClock.now
    private func at(_ seconds: Double) -> ContinuousClock.Instant { start + .milliseconds(Int(seconds * 1000)) }
    private func fresh() -> LeaderSoftState { LeaderSoftState(policy: PolicyConfiguration(), seed: 1, reconcileGrace: .seconds(2)) }
    private func load(running: Int, waiting: Int = 0) -> EngineLoad { EngineLoad(running: running, waiting: waiting, kvUsage: 0.1) }

    @Test func aLostFinishHealsAfterTwoReportsPastTheGrace() {
        var soft = fresh()
        soft.assigned("a", chain: [], request: "leaked", at: at(0))
        soft.assigned("a", chain: [], request: "running", at: at(0.5))
        // Before the grace a short engine count proves nothing.
        soft.report("a", load: load(running: 1), healthy: true, at: at(1.0))
        soft.report("a", load: load(running: 1), healthy: true, at: at(1.5))
        #expect(soft.inFlight["a"] == 2)
        // Past it, the first short report is noted, the second releases the oldest slot.
        soft.report("a", load: load(running: 1), healthy: true, at: at(2.6))
        #expect(soft.inFlight["a"] == 2)
        soft.report("a", load: load(running: 1), healthy: true, at: at(2.9))
        #expect(soft.inFlight["a"] == 1)
        #expect(soft.slots["leaked"] == nil && soft.slots["running"] == ["a"])
        // The late finish of the released request changes nothing; the running one's still counts.
        soft.finished("a", request: "leaked")
        #expect(soft.inFlight["a"] == 1)
        soft.finished("a", request: "running")
        #expect(soft.inFlight["a"] == 0 && soft.held["a"]?.isEmpty != false)
    }

    @Test func aLongRequestTheEngineStillRunsIsNeverReleased() {
        var soft = fresh()
        soft.assigned("a", chain: [], request: "long", at: at(0))
        for tick in 1...40 { soft.report("a", load: load(running: 0, waiting: 1), healthy: true, at: at(Double(tick) * 0.25)) }
        #expect(soft.inFlight["a"] == 1)
    }

    @Test func aShortfallMustLastTwoReportsInARow() {
        var soft = fresh()
        soft.assigned("a", chain: [], request: "r", at: at(0))
        // One short scrape between two full ones (a request between engine steps) is not enough.
        for (tick, running) in [(3.0, 0), (3.25, 1), (3.5, 0), (3.75, 1), (4.0, 0)] {
            soft.report("a", load: load(running: running), healthy: true, at: at(tick))
        }
        #expect(soft.inFlight["a"] == 1)
    }

    @Test func anUnhealthyReportSaysNothingAboutRequests() {
        var soft = fresh()
        soft.assigned("a", chain: [], request: "r", at: at(0))
        for tick in 1...20 { soft.report("a", load: load(running: 0), healthy: false, at: at(2 + Double(tick) * 0.25)) }
        #expect(soft.inFlight["a"] == 1)
    }

    @Test func aPairReleasesOnlyTheSideItsEngineNoLongerRuns() {
        var soft = fresh()
        soft.assigned("p", chain: [], request: "r", at: at(0))
        soft.assigned("d", chain: [], request: "r", at: at(0))
        for tick in [3.0, 3.25] {
            soft.report("p", load: load(running: 0), healthy: true, at: at(tick))
            soft.report("d", load: load(running: 1), healthy: true, at: at(tick))
        }
        #expect(soft.inFlight["p"] == 0 && soft.inFlight["d"] == 1 && soft.slots["r"] == ["d"])
    }
}
