import Routing
import Seeded
import Testing

@Suite struct PrefillEstimateTests {
    @Test func theBacklogDrainsAtTheRateAndEachAssignmentAddsAtOnce() {
        var estimate = PrefillEstimate(tokensPerSecond: 1_000, meanRequestTokens: 500)
        estimate.assigned(tokens: 2_000, at: 10)
        estimate.assigned(tokens: 1_000, at: 10.5)  // 1,500 left of the first, then 1,000 more
        #expect(estimate.backlog(at: 10.5) == 2_500)
        #expect(estimate.backlog(at: 11.5) == 1_500)
        #expect(estimate.backlog(at: 20) == 0)
        #expect(estimate.backlog(at: 9) == 2_500, "a time before the last change drains nothing")
    }

    @Test func aReportReanchorsTheBacklog() {
        var estimate = PrefillEstimate(tokensPerSecond: 1_000, meanRequestTokens: 500)
        estimate.assigned(tokens: 5_000, at: 0)
        estimate.reported(waiting: 0, computedTokensPerSecond: 0, at: 1)
        #expect(estimate.backlog(at: 1) == 4_000, "all of it was sent since the last report: it may still be running")
        estimate.assigned(tokens: 300, at: 1)
        estimate.reported(waiting: 0, computedTokensPerSecond: 0, at: 1.1)
        // Nothing waits there: what it still holds can only be what reached it since the last
        // report (the engine computed faster than the leader thought).
        #expect(estimate.backlog(at: 1.1) == 300)
        // Eight waiting, where the leader thought the engine nearly done (a new leader, or clients
        // that bypass the router): at least eight requests' worth.
        estimate.reported(waiting: 8, computedTokensPerSecond: 0, at: 1)
        #expect(estimate.backlog(at: 1) == 8 * estimate.meanRequestTokens)
    }

    @Test func idleReportsOnlyRaiseTheRateAndSaturatedOnesMoveItBothWays() {
        var estimate = PrefillEstimate(tokensPerSecond: 10_000, meanRequestTokens: 500)
        estimate.reported(waiting: 0, computedTokensPerSecond: 2_000, at: 1)
        #expect(estimate.tokensPerSecond == 10_000, "an idle engine computed little because little came")
        estimate.reported(waiting: 0, computedTokensPerSecond: 14_000, at: 2)
        #expect(estimate.tokensPerSecond == 14_000)
        for second in 3...30 { estimate.reported(waiting: 20, computedTokensPerSecond: 4_000, at: Double(second)) }
        #expect(abs(estimate.tokensPerSecond - 4_000) < 10, "while requests wait, the engine runs flat out")
        estimate.reported(waiting: 5, computedTokensPerSecond: .nan, at: 31)
        #expect(estimate.tokensPerSecond.isFinite)
        // Waiting for KV blocks, not for prefill: the report says nothing of the prefill rate.
        estimate.reported(waiting: 30, computedTokensPerSecond: 100, memoryBound: true, at: 32)
        #expect(abs(estimate.tokensPerSecond - 4_000) < 10)
    }
}

@Suite struct ExpectedTTFTTests {
    private func router(_ configure: (inout PolicyConfiguration) -> Void = { _ in }) -> Router {
        var configuration = PolicyConfiguration()
        configuration.name = .expectedTTFT
        configure(&configuration)
        return Router(configuration: configuration, seed: 9)
    }

    private func instance(_ id: String, backlog: Double = 0, rate: Double = 10_000, running: Int = 0) -> RoutingInstance {
        var instance = RoutingInstance(id: id, model: "m", load: EngineLoad(running: running, waiting: 0, kvUsage: 0.2))
        instance.prefillBacklogTokens = backlog
        instance.prefillTokensPerSecond = rate
        return instance
    }

    private func chain(_ length: Int) -> [UInt64] { (0..<UInt64(length)).map { $0 &* 0x9E37_79B9_7F4A_7C15 &+ 1 } }

    @Test func theInstanceHoldingThePromptWinsUntilItsQueueCostsMoreThanComputingItElsewhere() {
        var table = PrefixAffinityTable()
        let prompt = chain(32)  // 2,048 tokens
        table.record(prompt, on: "warm")
        let request = RoutingRequest(model: "m", prefixHashes: prompt, promptTokens: 2_100)
        var policy = router()
        #expect(policy.decide(request, instances: [instance("cold"), instance("warm")], affinity: table) == .assign(instance: "warm", cachedChunks: 32))
        // 0.3 s of queued prompts on the warm one against 0.21 s to compute the whole prompt cold.
        let busy = [instance("cold"), instance("warm", backlog: 3_000)]
        #expect(policy.decide(request, instances: busy, affinity: table) == .assign(instance: "cold", cachedChunks: 0))
        let estimate = policy.expectedTTFT(request, busy[1], cachedChunks: 32)
        #expect(abs(estimate.waitSeconds - 0.3) < 1e-9 && abs(estimate.prefillSeconds - 0.0052) < 1e-9)
    }

    @Test func aSlowerInstanceCountsItsRateAndRunningSequencesCostTheirStall() {
        var policy = router()
        let request = RoutingRequest(model: "m", prefixHashes: [], promptTokens: 1_000)
        #expect(policy.decide(request, instances: [instance("slow", rate: 2_000), instance("fast")], affinity: PrefixAffinityTable())
            == .assign(instance: "fast", cachedChunks: 0))
        // Equal queues: 60 decoding sequences stalled by 0.1 s each weigh 0.3 s at 0.05.
        let crowded = [instance("crowded", running: 60), instance("quiet", running: 2)]
        #expect(policy.decide(request, instances: crowded, affinity: PrefixAffinityTable()) == .assign(instance: "quiet", cachedChunks: 0))
        let stall = policy.expectedTTFT(request, crowded[0], cachedChunks: 0).interferenceSeconds
        #expect(abs(stall - 60 * 0.1 * 0.05) < 1e-9)
    }

    @Test func aBurstBetweenReportsSpreadsAsTheLeadersBacklogGrows() {
        // The leader's bookkeeping as SchedulerNode does it: each assignment adds its tokens at once.
        var policy = router()
        var estimates = (0..<5).map { _ in PrefillEstimate(tokensPerSecond: 10_000, meanRequestTokens: 512) }
        var counts = Array(repeating: 0, count: 5)
        for _ in 0..<500 {
            let pool = (0..<5).map { i in instance("i\(i)", backlog: estimates[i].backlog(at: 0)) }
            guard case .assign(let id, _) = policy.decide(RoutingRequest(model: "m", prefixHashes: [], promptTokens: 800), instances: pool, affinity: PrefixAffinityTable())
            else { Issue.record("no assignment"); return }
            let index = Int(id.dropFirst())!
            estimates[index].assigned(tokens: 800, at: 0)
            counts[index] += 1
        }
        // Near-ties are drawn at random, so the counts are not exactly even; a herd would put
        // hundreds on one.
        #expect(counts.max()! - counts.min()! <= 10, "\(counts)")
    }

    @Test func nearTiesAreSpreadAndTheChoiceIsNeverClearlyWorseThanTheBest() {
        var rng = SplitMix64(seed: 11)
        var policy = router()
        for _ in 0..<2_000 {
            let pool = (0..<6).map { i in
                instance("i\(i)", backlog: Double(rng.next() % 4) * 1_000, rate: [5_000, 10_000][Int(rng.next() % 2)], running: Int(rng.next() % 40))
            }
            let request = RoutingRequest(model: "m", prefixHashes: [], promptTokens: Int(rng.next() % 3_000) + 1)
            guard case .assign(let id, _) = policy.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
                Issue.record("no assignment")
                return
            }
            let costs = pool.map { policy.expectedTTFT(request, $0, cachedChunks: 0).total }
            let best = costs.min()!
            let chosen = costs[pool.firstIndex { $0.id == id }!]
            #expect(chosen <= best + max(0.001, best * 0.05) + 1e-12)
        }
        // Identical idle instances: every one is chosen.
        var spread: Set<String> = []
        for _ in 0..<200 {
            if case .assign(let id, _) = policy.decide(
                RoutingRequest(model: "m", prefixHashes: [], promptTokens: 100), instances: (0..<4).map { instance("e\($0)") },
                affinity: PrefixAffinityTable())
            { spread.insert(id) }
        }
        #expect(spread == ["e0", "e1", "e2", "e3"])
    }

    @Test func theParametersAreSetByNameAndChecked() throws {
        var configuration = PolicyConfiguration()
        try configuration.set("prefill_tokens_per_second", 25_000)
        try configuration.set("decode_interference", 0)
        try configuration.set("near_tie_fraction", 0.1)
        #expect(configuration.prefillTokensPerSecond == 25_000 && configuration.decodeInterference == 0 && configuration.nearTieFraction == 0.1)
        #expect(throws: PolicyError.self) { try configuration.set("prefill_tokens_per_second", 0) }
        #expect(throws: PolicyError.self) { try configuration.set("near_tie_fraction", 2) }
        #expect(PolicyConfiguration.Name(rawValue: "expected-ttft") == .expectedTTFT)
    }
}
