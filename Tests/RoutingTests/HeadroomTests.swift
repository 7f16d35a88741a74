import Routing
import Testing

/// A request whose priority class only uses spare room (flow control's `headroom`) goes only to
/// an instance that has it; others are untouched by it.
@Suite struct HeadroomTests {
    let batch = RoutingHeadroom(maxWaiting: 0, maxKVUsage: 0.8)

    func pool() -> [RoutingInstance] {
        [
            RoutingInstance(id: "busy", model: "m", load: EngineLoad(running: 40, waiting: 2, kvUsage: 0.5)),
            RoutingInstance(id: "full", model: "m", load: EngineLoad(running: 40, waiting: 0, kvUsage: 0.9)),
            RoutingInstance(id: "calm", model: "m", load: EngineLoad(running: 10, waiting: 0, kvUsage: 0.3), inFlightSinceReport: 3),
        ]
    }

    @Test func anInstanceIsFullForAClassWhenAnyBoundIsPassed() {
        let router = Router()
        let instances = pool()
        #expect(instances.map { router.isFull($0, for: batch) } == [true, true, false])
        // Without headroom only saturation counts.
        #expect(instances.map { router.isFull($0, for: nil) } == [false, false, false])
        // Running sequences count those sent since the report (10 + 3) and this one.
        #expect(router.isFull(instances[2], for: RoutingHeadroom(maxWaiting: 0, maxKVUsage: 1, maxRunning: 13)))
        #expect(!router.isFull(instances[2], for: RoutingHeadroom(maxWaiting: 0, maxKVUsage: 1, maxRunning: 14)))
        // An instance with no fresh report is judged by saturation alone, and by the leader's own
        // estimate of the prompt work sent there.
        var fresh = RoutingInstance(id: "new", model: "m")
        #expect(!router.isFull(fresh, for: batch))
        // Prompt work queued: 1,500 tokens at 10,000 a second is 150 ms.
        fresh.prefillBacklogTokens = 1_500
        fresh.prefillTokensPerSecond = 10_000
        #expect(router.isFull(fresh, for: RoutingHeadroom(maxWaiting: 0, maxKVUsage: 1, maxPrefillSeconds: 0.15)))
        #expect(!router.isFull(fresh, for: RoutingHeadroom(maxWaiting: 0, maxKVUsage: 1, maxPrefillSeconds: 0.2)))
        #expect(!router.isFull(fresh, for: RoutingHeadroom(maxWaiting: 0, maxKVUsage: 1)))
    }

    @Test func aBatchRequestGoesOnlyWhereThereIsRoomAndWaitsWhenNoneHasIt() {
        var router = Router()
        var instances = pool()
        let request = RoutingRequest(model: "m", prefixHashes: [1, 2], promptTokens: 100, headroom: batch)
        for _ in 0..<20 {
            #expect(router.decide(request, instances: instances, affinity: PrefixAffinityTable()) == .assign(instance: "calm", cachedChunks: 0))
        }
        instances[2].load?.waiting = 1
        #expect(router.decide(request, instances: instances, affinity: PrefixAffinityTable())
            == .wait(retryAfterMilliseconds: 200, reason: "all 3 instances of model 'm' lack the headroom the request's priority class asks for"))
        // The same request without a class's headroom still goes somewhere.
        var plain = request
        plain.headroom = nil
        guard case .assign = router.decide(plain, instances: instances, affinity: PrefixAffinityTable()) else {
            Issue.record("a request without headroom was not assigned")
            return
        }
    }
}
