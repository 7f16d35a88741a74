import Routing
import Seeded
import Testing

private func instances(_ count: Int, model: String = "m") -> [RoutingInstance] {
    (0..<count).map { RoutingInstance(id: "i\($0)", model: model) }
}

private func chain(_ seed: UInt64, _ length: Int) -> [UInt64] {
    var rng = SplitMix64(seed: seed)
    return (0..<length).map { _ in rng.next() }
}

@Suite struct RouterTests {
    @Test func neverChoosesAnIneligibleInstance() {
        var rng = SplitMix64(seed: 7)
        // pd-split may choose prefill instances; PDSplitTests holds it to its own rules.
        for policy in PolicyConfiguration.Name.allCases where policy != .pdSplit {
            var configuration = PolicyConfiguration()
            configuration.name = policy
            var router = Router(configuration: configuration, seed: 1)
            var table = PrefixAffinityTable()
            for _ in 0..<3_000 {
                let pool = randomPool(&rng, otherModelOneIn: 4) { roll, _ in roll == 2 ? .prefill : .both }
                let excluded: Set<String> = rng.next() % 5 == 0 ? ["i\(rng.next() % 8)"] : []
                let request = RoutingRequest(
                    model: "m", prefixHashes: chain(rng.next() % 50, 20), promptTokens: 1280, exclude: excluded)
                let decision = router.decide(request, instances: pool, affinity: table)
                if case .assign(let id, _) = decision {
                    let chosen = pool.first { $0.id == id }!
                    #expect(chosen.state == .up && chosen.model == "m" && chosen.role != .prefill)
                    #expect(!excluded.contains(id))
                    #expect(!router.isSaturated(chosen))
                    table.record(request.prefixHashes, on: id)
                } else {
                    let anyOpen = pool.contains {
                        $0.state == .up && $0.model == "m" && $0.role != .prefill && !excluded.contains($0.id) && !router.isSaturated($0)
                    }
                    #expect(!anyOpen, "\(policy): \(decision) although an instance was open")
                }
            }
        }
    }

    @Test func explainsWhyNothingCanServe() {
        var router = Router()
        let table = PrefixAffinityTable()
        let request = RoutingRequest(model: "m", prefixHashes: [1], promptTokens: 10)
        #expect(router.decide(request, instances: [], affinity: table) == .noInstance(reason: "no instance serves model 'm'"))
        var down = instances(2)
        down[0].state = .down
        down[1].state = .draining
        #expect(router.decide(request, instances: down, affinity: table) == .noInstance(reason: "no instance of model 'm' is up"))
        var excluded = request
        excluded.exclude = ["i0", "i1"]
        #expect(
            router.decide(excluded, instances: instances(2), affinity: table)
                == .noInstance(reason: "every up instance of model 'm' already failed this request"))
    }

    @Test func waitsWhenEveryInstanceIsSaturated() {
        var router = Router()
        var pool = instances(3)
        for index in pool.indices { pool[index].load = EngineLoad(running: 100, waiting: 64, kvUsage: 0.99) }
        let request = RoutingRequest(model: "m", prefixHashes: [1], promptTokens: 10)
        #expect(router.decide(request, instances: pool, affinity: PrefixAffinityTable())
            == .wait(retryAfterMilliseconds: 200, reason: "all 3 instances of model 'm' are saturated"))
        pool[1].load?.waiting = 3
        #expect(router.decide(request, instances: pool, affinity: PrefixAffinityTable()) == .assign(instance: "i1", cachedChunks: 0))
    }

    @Test func roundRobinCyclesEvenly() {
        var configuration = PolicyConfiguration()
        configuration.name = .roundRobin
        var router = Router(configuration: configuration)
        var counts: [String: Int] = [:]
        for _ in 0..<300 {
            if case .assign(let id, _) = router.decide(
                RoutingRequest(model: "m", prefixHashes: [], promptTokens: 1), instances: instances(3),
                affinity: PrefixAffinityTable())
            { counts[id, default: 0] += 1 }
        }
        #expect(counts == ["i0": 100, "i1": 100, "i2": 100])
    }

    @Test func leastRequestAndLLMMetricsPickTheLeastLoaded() {
        var pool = instances(3)
        pool[0].inFlight = 5
        pool[1].inFlight = 2
        pool[2].inFlight = 9
        pool[0].load = EngineLoad(running: 10, waiting: 0, kvUsage: 0.2)
        pool[1].load = EngineLoad(running: 10, waiting: 6, kvUsage: 0.2)
        pool[2].load = EngineLoad(running: 12, waiting: 0, kvUsage: 0.2)
        let request = RoutingRequest(model: "m", prefixHashes: [], promptTokens: 1)
        var configuration = PolicyConfiguration()
        configuration.name = .leastRequest
        var least = Router(configuration: configuration)
        #expect(least.decide(request, instances: pool, affinity: PrefixAffinityTable()) == .assign(instance: "i1", cachedChunks: 0))
        configuration.name = .llmMetrics
        var metrics = Router(configuration: configuration)
        #expect(metrics.decide(request, instances: pool, affinity: PrefixAffinityTable()) == .assign(instance: "i0", cachedChunks: 0))
        // KV pressure doubles an instance's queued work.
        pool[0].load?.kvUsage = 0.95
        pool[0].load?.running = 14
        #expect(metrics.decide(request, instances: pool, affinity: PrefixAffinityTable()) == .assign(instance: "i2", cachedChunks: 0))
    }

    @Test func prefixCacheFollowsTheCacheUntilLoadOutweighsIt() {
        var router = Router()
        var table = PrefixAffinityTable()
        let prompt = chain(1, 30)  // 30 chunks of 64 tokens
        table.record(prompt, on: "i2")
        var pool = instances(3)
        let request = RoutingRequest(model: "m", prefixHashes: prompt + [42], promptTokens: 31 * 64)
        #expect(router.decide(request, instances: pool, affinity: table) == .assign(instance: "i2", cachedChunks: 30))
        // 1,920 cached tokens are worth less than eight queued requests of 512 tokens at half weight.
        pool[2].load = EngineLoad(running: 0, waiting: 8, kvUsage: 0.5)
        if case .assign(let id, _) = router.decide(request, instances: pool, affinity: table) {
            #expect(id != "i2")
        } else {
            Issue.record("expected an assignment")
        }
        // A stale report is ignored: the scheduler's own in-flight count stands in.
        pool[2].load?.ageMilliseconds = 60_000
        #expect(router.decide(request, instances: pool, affinity: table) == .assign(instance: "i2", cachedChunks: 30))
    }

    /// The failure of naive affinity: every request shares one long prompt, so every request
    /// matches the instance that served the first one. Outstanding work must stay spread: an
    /// instance that holds the prompt is left once the work queued there outweighs computing
    /// the prompt elsewhere, 2,048 tokens against `load_weight` × 512 a request in flight (no
    /// reports here), so the spread stays within that many requests.
    @Test(arguments: [1.0, 0.5]) func identicalPromptsDoNotPileOntoOneInstance(loadWeight: Double) {
        var configuration = PolicyConfiguration()
        configuration.loadWeight = loadWeight
        var router = Router(configuration: configuration, seed: 3)
        var table = PrefixAffinityTable()
        var pool = instances(8)
        var outstanding: [[Int]] = Array(repeating: [], count: 8)
        let prompt = chain(9, 32)
        var worstSpread = 0
        for step in 0..<5_000 {
            let request = RoutingRequest(model: "m", prefixHashes: prompt, promptTokens: 2048)
            guard case .assign(let id, _) = router.decide(request, instances: pool, affinity: table) else {
                Issue.record("no assignment")
                return
            }
            let index = Int(id.dropFirst())!
            table.record(prompt, on: id)
            pool[index].inFlight += 1
            outstanding[index].append(step)
            // Requests finish after 40 decisions, whoever served them.
            for other in pool.indices where outstanding[other].first.map({ step - $0 >= 40 }) == true {
                outstanding[other].removeFirst()
                pool[other].inFlight -= 1
            }
            let counts = pool.map(\.inFlight)
            if step > 100 { worstSpread = max(worstSpread, counts.max()! - counts.min()!) }
        }
        let bound = Int((2_048 / (loadWeight * 512)).rounded(.up))
        #expect(worstSpread <= bound, "in-flight spread reached \(worstSpread)")
        // It spills: more instances than one come to hold it (all of them at weight 1).
        #expect(table.instanceIDs.count >= (loadWeight == 1 ? 8 : 4), "\(table.instanceIDs.count) instances hold the shared prefix")
    }

    @Test func tiesAreBrokenAtRandomButReproducibly() {
        func run(seed: UInt64) -> [String] {
            var router = Router(seed: seed)
            return (0..<40).compactMap {
                if case .assign(let id, _) = router.decide(
                    RoutingRequest(model: "m", prefixHashes: [UInt64($0)], promptTokens: 100), instances: instances(4),
                    affinity: PrefixAffinityTable()) { return id }
                return nil
            }
        }
        #expect(run(seed: 5) == run(seed: 5))
        #expect(Set(run(seed: 5)).count == 4)
    }

    @Test func parametersAreCheckedByName() throws {
        var configuration = PolicyConfiguration()
        try configuration.set("load_weight", 2)
        #expect(configuration.loadWeight == 2)
        #expect(throws: PolicyError.unknownParameter("nope")) { try configuration.set("nope", 1) }
        #expect(throws: PolicyError.invalidParameter(key: "kv_pressure", reason: "must be from 0 to 1")) {
            try configuration.set("kv_pressure", 3)
        }
        #expect(throws: PolicyError.invalidParameter(key: "load_weight", reason: "must be a finite number")) {
            try configuration.set("load_weight", .nan)
        }
        #expect(configuration.parameters.count == PolicyConfiguration.parameterKeys.count)
    }

    /// Sixty new conversations arrive at once (a closed loop starting): between two reports the
    /// only measure of an engine's load is what was sent there since. Weighed by the prompt
    /// tokens each brings, the burst spreads the work itself, as a greedy list schedule does:
    /// no engine ends up more than one prompt's work above another.
    @Test func aBurstSpreadsByPromptTokensBetweenReports() {
        var rng = SplitMix64(seed: 11)
        var router = Router(seed: 5)
        var pool = instances(5)
        for index in pool.indices {
            pool[index].load = EngineLoad(running: 0, waiting: 0, kvUsage: 0.1)
            pool[index].sentSinceReportTokens = 0
        }
        var largest = 0
        for conversation in 0..<60 {
            let tokens = 50 + Int(rng.next() % 1_500)
            largest = max(largest, tokens)
            let request = RoutingRequest(model: "m", prefixHashes: chain(UInt64(1_000 + conversation), tokens / 64), promptTokens: tokens)
            guard case .assign(let id, let cached) = router.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
                Issue.record("no assignment")
                return
            }
            #expect(cached == 0)
            let index = Int(id.dropFirst())!
            pool[index].inFlight += 1
            pool[index].inFlightSinceReport += 1
            pool[index].sentSinceReportTokens! += Double(tokens)
        }
        let work = pool.map { $0.sentSinceReportTokens! }
        #expect(work.max()! - work.min()! <= Double(largest) + 5 * 32, "work per engine: \(work)")
    }

    /// An engine that queues (requests waiting, or its KV cache under pressure) will queue what
    /// it is sent too: a request sent there since the report weighs at least a waiting one, even
    /// when its whole prompt is cached.
    @Test func requestsSentToAQueueingEngineWeighAsQueued() {
        let router = Router()
        var instance = RoutingInstance(id: "a", model: "m", load: EngineLoad(running: 4, waiting: 0, kvUsage: 0.5), inFlight: 6, inFlightSinceReport: 2)
        instance.sentSinceReportTokens = 100
        // Admitting: 100 tokens to compute, then six running sequences.
        #expect(router.queuedTokens(instance) == 100 + 6 * 32)
        instance.load?.waiting = 1
        #expect(router.queuedTokens(instance) == 512 + 2 * 512 + 6 * 32)
        instance.load?.waiting = 0
        instance.load?.kvUsage = 0.95
        #expect(router.queuedTokens(instance) == 2 * (2 * 512 + 6 * 32))
        // Unknown sizes (no count from the scheduler): each counts as a queued request.
        instance.load?.kvUsage = 0.5
        instance.sentSinceReportTokens = nil
        #expect(router.queuedTokens(instance) == 2 * 512 + 6 * 32)
    }
}

@Suite struct AffinityOverlayTests {
    @Test func uncommittedAffinityCountsLikeCommitted() {
        let pool = instances(4)
        let chain: [UInt64] = [11, 12, 13, 14, 15, 16, 17, 18]
        let request = RoutingRequest(model: "m", prefixHashes: chain, promptTokens: 8 * 64)
        var overlay = AffinityOverlay()
        overlay.record(Array(chain.prefix(6)), on: "i2")
        #expect(overlay.cachedChunks(for: chain) == ["i2": 6])
        var router = Router()
        #expect(router.decide(request, instances: pool, affinity: PrefixAffinityTable(), overlay: overlay) == .assign(instance: "i2", cachedChunks: 6))
        // The longer of the two views wins.
        var table = PrefixAffinityTable()
        table.record(chain, on: "i2")
        #expect(router.decide(request, instances: pool, affinity: table, overlay: overlay) == .assign(instance: "i2", cachedChunks: 8))
        // Another chain that shares only the first chunk matches one chunk.
        #expect(overlay.cachedChunks(for: [11, 99, 98]) == ["i2": 1])
        #expect(AffinityOverlay().cachedChunks(for: chain).isEmpty)
        // It remembers two batch intervals, then forgets.
        overlay.rotate()
        #expect(overlay.cachedChunks(for: chain) == ["i2": 6])
        overlay.rotate()
        #expect(overlay.isEmpty)
    }
}
