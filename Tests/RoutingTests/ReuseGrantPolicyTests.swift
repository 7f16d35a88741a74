import Routing
import Testing

/// When the leader lets a conversation's next turn go to its instance without asking
/// (`Router.grantsReuse`): only the affinity policies, only with `reuse_ms`, only while the
/// instance's fresh report shows it keeping no queue and its KV cache not under pressure, and
/// the prompt work sent there and not yet computed is at most one typical request's.
@Suite struct ReuseGrantPolicyTests {
    private func instance(_ load: EngineLoad?) -> RoutingInstance { RoutingInstance(id: "a", model: "m", load: load) }
    private let calm = EngineLoad(running: 40, waiting: 0, kvUsage: 0.5)

    private func router(_ name: PolicyConfiguration.Name, reuse: Int = 30_000) -> Router {
        var configuration = PolicyConfiguration()
        configuration.name = name
        configuration.reuseMilliseconds = reuse
        return Router(configuration: configuration)
    }

    @Test(arguments: PolicyConfiguration.Name.allCases)
    func onlyTheAffinityPoliciesGrant(name: PolicyConfiguration.Name) {
        #expect(router(name).grantsReuse(on: instance(calm)) == (name == .prefixCache || name == .expectedTTFT))
    }

    @Test func offByDefault() {
        #expect(PolicyConfiguration().reuseMilliseconds == 0)
        #expect(!Router().grantsReuse(on: instance(calm)))
    }

    @Test func noGrantWithoutReuseOrWithoutAFreshCalmReport() {
        #expect(router(.prefixCache).grantsReuse(on: instance(calm)))
        #expect(!router(.prefixCache, reuse: 0).grantsReuse(on: instance(calm)))
        #expect(!router(.prefixCache).grantsReuse(on: instance(nil)))
        #expect(!router(.prefixCache).grantsReuse(on: instance(EngineLoad(running: 40, waiting: 1, kvUsage: 0.5))))
        #expect(!router(.prefixCache).grantsReuse(on: instance(EngineLoad(running: 40, waiting: 0, kvUsage: 0.95))))
        #expect(!router(.prefixCache).grantsReuse(on: instance(EngineLoad(running: 40, waiting: 0, kvUsage: 0.5, ageMilliseconds: 60_000))))
        var computing = instance(calm)
        computing.prefillBacklogTokens = 513
        #expect(!router(.prefixCache).grantsReuse(on: computing))
        computing.prefillBacklogTokens = 512
        #expect(router(.prefixCache).grantsReuse(on: computing))
    }
}
