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

    /// Reports every quarter second, each with the same rate, from `start` for `seconds`.
    private func report(
        _ estimate: inout PrefillEstimate, from start: Double, seconds: Double, waiting: Int, rate: Double, memoryBound: Bool = false
    ) {
        for tick in 0..<Int(seconds * 4) {
            estimate.reported(waiting: waiting, computedTokensPerSecond: rate, memoryBound: memoryBound, at: start + Double(tick) * 0.25)
        }
    }

    @Test func idleWindowsOnlyRaiseTheRateAndSaturatedOnesMoveItBothWays() {
        var estimate = PrefillEstimate(tokensPerSecond: 10_000, meanRequestTokens: 500)
        report(&estimate, from: 0, seconds: 6, waiting: 0, rate: 2_000)
        #expect(estimate.tokensPerSecond == 10_000, "an idle engine computed little because little came")
        report(&estimate, from: 6, seconds: 6, waiting: 0, rate: 14_000)
        #expect(abs(estimate.tokensPerSecond - 14_000) < 1)
        report(&estimate, from: 12, seconds: 20, waiting: 20, rate: 4_000)
        #expect(abs(estimate.tokensPerSecond - 4_000) < 10, "while requests wait, the engine runs flat out")
        estimate.reported(waiting: 5, computedTokensPerSecond: .nan, at: 32)
        #expect(estimate.tokensPerSecond.isFinite)
        // Waiting for KV blocks, not for prefill: the window has spare time, and says only that
        // the rate is at least what it shows.
        report(&estimate, from: 32.25, seconds: 10, waiting: 30, rate: 100, memoryBound: true)
        #expect(abs(estimate.tokensPerSecond - 4_000) < 10)
    }

    @Test func oneReportsBurstDoesNotRaiseTheRate() {
        // A step of 1.6 s completes 2,700 prompt tokens: they are counted in the quarter second
        // it ends in, 10,800 a second there, while the engine computed 1,667 a second at most.
        var estimate = PrefillEstimate(tokensPerSecond: 1_667, meanRequestTokens: 400)
        var at = 0.0
        for second in 0..<30 {
            for quarter in 0..<4 {
                let burst = quarter == 3 && second % 2 == 1
                estimate.reported(waiting: 0, computedTokensPerSecond: burst ? 10_800 : 0, at: at)
                at += 0.25
            }
        }
        #expect(estimate.tokensPerSecond == 1_667, "at most 1,620 a second over any five seconds")
        // Sustained, the same engine shows its rate, and the estimate follows it up; a window
        // that still held the last burst overstates it by at most that burst over five seconds.
        report(&estimate, from: at, seconds: 10, waiting: 0, rate: 2_000)
        #expect(estimate.tokensPerSecond >= 2_000 && estimate.tokensPerSecond <= 2_000 + 2_700 / 5)
    }

    @Test func aReportAfterALongGapDoesNotStandForTheGap() {
        var estimate = PrefillEstimate(tokensPerSecond: 1_667, meanRequestTokens: 400)
        report(&estimate, from: 0, seconds: 6, waiting: 0, rate: 0)
        // Reports stopped for 8 s (the engine was unhealthy); the next one shows a burst.
        estimate.reported(waiting: 0, computedTokensPerSecond: 10_800, at: 14)
        #expect(estimate.tokensPerSecond == 1_667)
        // The window starts again: five seconds of reports before it says anything.
        report(&estimate, from: 14.25, seconds: 4, waiting: 0, rate: 3_000)
        #expect(estimate.tokensPerSecond == 1_667)
        report(&estimate, from: 18.25, seconds: 2, waiting: 0, rate: 3_000)
        #expect(abs(estimate.tokensPerSecond - 3_000) < 1)
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
