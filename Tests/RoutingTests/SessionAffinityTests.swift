import Routing
import Testing

/// A request that carries a session goes to the instance that served the session last when that
/// costs no more than what the policy would otherwise choose among.
@Suite struct SessionAffinityTests {
    private func pool(_ inFlight: [Int]) -> [RoutingInstance] {
        inFlight.enumerated().map { RoutingInstance(id: "i\($0.offset)", model: "m", inFlight: $0.element) }
    }

    private func decide(_ policy: PolicyConfiguration.Name, _ instances: [RoutingInstance], session: String?, times: Int = 50) -> Set<String> {
        var configuration = PolicyConfiguration()
        configuration.name = policy
        var router = Router(configuration: configuration, seed: 5)
        var chosen: Set<String> = []
        for _ in 0..<times {
            // A prompt shorter than one chunk: no prefix to stick by.
            let request = RoutingRequest(model: "m", prefixHashes: [], promptTokens: 40, sessionInstance: session)
            if case .assign(let id, _) = router.decide(request, instances: instances, affinity: PrefixAffinityTable()) { chosen.insert(id) }
        }
        return chosen
    }

    @Test func amongEqualInstancesTheSessionsOwnIsChosenEveryTime() {
        for policy in [PolicyConfiguration.Name.expectedTTFT, .prefixCache, .leastRequest, .llmMetrics] {
            #expect(decide(policy, pool([0, 0, 0, 0]), session: "i2") == ["i2"], "\(policy)")
            #expect(decide(policy, pool([0, 0, 0, 0]), session: nil).count > 1, "\(policy): without a session, ties are spread")
        }
    }

    @Test func theSessionDoesNotOutweighLoadOrGoWhereItCannot() {
        #expect(decide(.leastRequest, pool([0, 3, 0]), session: "i1") == ["i0", "i2"])
        var down = pool([0, 0])
        down[1].state = .down
        #expect(decide(.prefixCache, down, session: "i1") == ["i0"])
        #expect(decide(.roundRobin, pool([0, 0, 0]), session: "i1") == ["i0", "i1", "i2"], "round-robin is the baseline: it ignores sessions")
    }

    @Test func theTableIsBoundedAndKeepsWhatIsInUse() {
        var table = SessionTable(capacity: 10)
        table.record("keep", on: "a")
        for n in 0..<4 { table.record("s\(n)", on: "b") }  // 5 in the newer generation: it turns older
        table.record("keep", on: "a")  // seen again: written into the newer one
        for n in 4..<8 { table.record("s\(n)", on: "b") }  // turns again: the first s0-s3 are forgotten
        #expect(table.instance(of: "keep") == "a")
        #expect(table.instance(of: "s0") == nil && table.instance(of: "s7") == "b")
        #expect(table.count <= 10)
        table.record("", on: "a")
        #expect(table.instance(of: "") == nil)
    }
}
