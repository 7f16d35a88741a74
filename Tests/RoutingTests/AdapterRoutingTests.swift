import Routing
import Testing

/// Requests for a LoRA adapter go to instances that serve it, preferring one that has it loaded.
@Suite struct AdapterRoutingTests {
    private func pool() -> [RoutingInstance] {
        [
            RoutingInstance(id: "plain", model: "base", load: EngineLoad(running: 0, waiting: 0, kvUsage: 0)),
            RoutingInstance(id: "cold", model: "base", adapters: ["sql", "poet"], load: EngineLoad(running: 0, waiting: 0, kvUsage: 0)),
            RoutingInstance(
                id: "warm", model: "base", aliases: ["base-chat"], adapters: ["sql", "poet"],
                load: EngineLoad(running: 0, waiting: 0, kvUsage: 0, loadedAdapters: ["sql"])),
        ]
    }

    private func choices(_ model: String, _ policy: PolicyConfiguration.Name, instances: [RoutingInstance], times: Int = 200) -> [String: Int] {
        var configuration = PolicyConfiguration()
        configuration.name = policy
        var router = Router(configuration: configuration, seed: 3)
        var counts: [String: Int] = [:]
        for _ in 0..<times {
            let decision = router.decide(
                RoutingRequest(model: model, prefixHashes: [], promptTokens: 100), instances: instances, affinity: PrefixAffinityTable())
            guard case .assign(let id, _) = decision else {
                Issue.record("\(model) on \(policy): \(decision)")
                return counts
            }
            counts[id, default: 0] += 1
        }
        return counts
    }

    @Test func anAdapterGoesOnlyWhereItIsServedAndPrefersWhereItIsLoaded() {
        #expect(choices("sql", .prefixCache, instances: pool()) == ["warm": 200])
        #expect(choices("sql", .llmMetrics, instances: pool()) == ["warm": 200])
        // Loaded nowhere: shared between the instances that serve it.
        let poet = choices("poet", .prefixCache, instances: pool())
        #expect(Set(poet.keys) == ["cold", "warm"] && poet.values.allSatisfy { $0 > 50 })
        for policy in [PolicyConfiguration.Name.roundRobin, .leastRequest] {
            #expect(Set(choices("sql", policy, instances: pool()).keys) == ["cold", "warm"])
        }
    }

    @Test func theBaseModelByAnyNameGoesAnywhereWithoutAnAdapterCost() {
        #expect(Set(choices("base", .prefixCache, instances: pool()).keys) == ["plain", "cold", "warm"])
        #expect(choices("base-chat", .prefixCache, instances: pool()) == ["warm": 200])
        var router = Router()
        #expect(router.adapterLoadCost(RoutingRequest(model: "base", prefixHashes: [], promptTokens: 1), pool()[1]) == 0)
        #expect(
            router.decide(RoutingRequest(model: "nope", prefixHashes: [], promptTokens: 1), instances: pool(), affinity: PrefixAffinityTable())
                == .noInstance(reason: "no instance serves model 'nope'"))
    }

    @Test func loadOutweighsTheAdapterCostAndAStaleReportShowsNothingLoaded() {
        var busy = pool()
        busy[2].load = EngineLoad(running: 4, waiting: 3, kvUsage: 0.5, loadedAdapters: ["sql"])
        // 3 queued × 512 + 4 running × 32 = 1664 token-equivalents against 256 to load the adapter.
        #expect(choices("sql", .prefixCache, instances: busy) == ["cold": 200])
        var stale = pool()
        stale[2].load?.ageMilliseconds = 60_000
        let spread = choices("sql", .prefixCache, instances: stale)
        #expect(Set(spread.keys) == ["cold", "warm"])
    }

    @Test func aZeroAdapterCostIgnoresWhereAdaptersAreLoaded() throws {
        var configuration = PolicyConfiguration()
        try configuration.set("adapter_load_tokens", 0)
        let router = Router(configuration: configuration)
        #expect(router.adapterLoadCost(RoutingRequest(model: "poet", prefixHashes: [], promptTokens: 1), pool()[1]) == 0)
        #expect(throws: PolicyError.self) { try configuration.set("adapter_load_tokens", -1) }
    }
}
