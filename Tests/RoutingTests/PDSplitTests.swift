import Routing
import Seeded
import Testing

private func chain(_ seed: UInt64, _ length: Int) -> [UInt64] {
    var rng = SplitMix64(seed: seed)
    return (0..<length).map { _ in rng.next() }
}

/// Two prefill and two decode instances of model "m", idle unless a test loads them.
private func disaggregatedPool() -> [RoutingInstance] {
    [
        RoutingInstance(id: "d0", model: "m", role: .decode), RoutingInstance(id: "d1", model: "m", role: .decode),
        RoutingInstance(id: "p0", model: "m", role: .prefill), RoutingInstance(id: "p1", model: "m", role: .prefill),
    ]
}

private func pdRouter(localPrefill: Int = 512) -> Router {
    var configuration = PolicyConfiguration()
    configuration.name = .pdSplit
    configuration.pdLocalPrefillTokens = localPrefill
    return Router(configuration: configuration, seed: 3)
}

@Suite struct PDSplitTests {
    @Test func splitsALongUncachedPromptIntoAPrefillAndADecodeInstance() {
        var router = pdRouter()
        let request = RoutingRequest(model: "m", prefixHashes: chain(1, 32), promptTokens: 2_048)
        guard case .assignPair(let prefill, let decode, let cached) = router.decide(
            request, instances: disaggregatedPool(), affinity: PrefixAffinityTable())
        else { Issue.record("expected a pair"); return }
        #expect(prefill.hasPrefix("p") && decode.hasPrefix("d") && cached == 0)
    }

    @Test func sendsAShortUncachedRemainderStraightToADecodeInstance() {
        var router = pdRouter(localPrefill: 512)
        var table = PrefixAffinityTable()
        let earlier = chain(2, 30)
        table.record(earlier, on: "d1")  // the decode instance that served the conversation so far
        // 30 cached chunks of 64 tokens; 4 new chunks: 256 uncached tokens there.
        let followUp = RoutingRequest(model: "m", prefixHashes: earlier + chain(3, 4), promptTokens: 34 * 64)
        #expect(router.decide(followUp, instances: disaggregatedPool(), affinity: table) == .assign(instance: "d1", cachedChunks: 30))
        // The same remainder above the threshold is split, and the prefill side is chosen by its cache.
        var strict = pdRouter(localPrefill: 128)
        table.record(earlier, on: "p1")
        #expect(strict.decide(followUp, instances: disaggregatedPool(), affinity: table) != .assign(instance: "d1", cachedChunks: 30))
        if case .assignPair(let prefill, _, let cached) = strict.decide(followUp, instances: disaggregatedPool(), affinity: table) {
            #expect(prefill == "p1" && cached == 30)
        } else {
            Issue.record("expected a pair")
        }
        // A short prompt with nothing cached is computed locally too.
        let short = RoutingRequest(model: "m", prefixHashes: chain(4, 3), promptTokens: 180)
        guard case .assign(let id, _) = router.decide(short, instances: disaggregatedPool(), affinity: PrefixAffinityTable()) else {
            Issue.record("expected one instance"); return
        }
        #expect(id.hasPrefix("d"))
    }

    @Test func choosesThePrefillByQueuedPromptWorkAndTheDecodeByDecodeLoad() {
        var router = pdRouter()
        var pool = disaggregatedPool()
        pool[0].load = EngineLoad(running: 40, waiting: 2, kvUsage: 0.6)   // d0 busy
        pool[1].load = EngineLoad(running: 10, waiting: 0, kvUsage: 0.3)   // d1 lighter
        pool[2].load = EngineLoad(running: 2, waiting: 6, kvUsage: 0.2)    // p0 has prompts queued
        pool[3].load = EngineLoad(running: 1, waiting: 0, kvUsage: 0.2)
        let request = RoutingRequest(model: "m", prefixHashes: chain(5, 32), promptTokens: 2_048)
        for _ in 0..<20 {
            #expect(router.decide(request, instances: pool, affinity: PrefixAffinityTable()) == .assignPair(prefill: "p1", decode: "d1", cachedChunks: 0))
        }
        // KV pressure doubles a decode instance's load: 10 sequences at 95% count as 20 > 16.
        pool[1].load = EngineLoad(running: 10, waiting: 0, kvUsage: 0.95)
        pool[0].load = EngineLoad(running: 16, waiting: 0, kvUsage: 0.5)
        #expect(router.decide(request, instances: pool, affinity: PrefixAffinityTable()) == .assignPair(prefill: "p1", decode: "d0", cachedChunks: 0))
    }

    @Test func computesLocallyWhileThePrefillSideIsBackedUp() {
        var router = pdRouter()
        var pool = disaggregatedPool()
        pool[2].inFlight = 8  // both prefill instances have the default 8 prompts outstanding
        pool[3].inFlight = 9
        let request = RoutingRequest(model: "m", prefixHashes: chain(9, 40), promptTokens: 2_560)
        guard case .assign(let local, _) = router.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
            Issue.record("expected the decode side to compute it"); return
        }
        #expect(local.hasPrefix("d"))
        // One prefill instance drains: splitting pays again, there, even when the other holds
        // the prompt's cache.
        var table = PrefixAffinityTable()
        table.record(request.prefixHashes, on: "p0")
        pool[3].inFlight = 7
        guard case .assignPair(let drained, _, _) = router.decide(request, instances: pool, affinity: table) else {
            Issue.record("expected a pair"); return
        }
        #expect(drained == "p1")
        guard case .assignPair(let prefill, _, _) = router.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
            Issue.record("expected a pair"); return
        }
        #expect(prefill == "p1")
    }

    @Test func fallsBackToOneInstanceWhenASideHasNoneUp() {
        var router = pdRouter()
        let request = RoutingRequest(model: "m", prefixHashes: chain(6, 32), promptTokens: 2_048)
        var pool = disaggregatedPool()
        pool[2].state = .down
        pool[3].state = .down
        guard case .assign(let decodeOnly, _) = router.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
            Issue.record("expected one instance"); return
        }
        #expect(decodeOnly.hasPrefix("d"))
        pool = disaggregatedPool()
        pool[0].state = .down
        pool[1].state = .draining
        guard case .assign(let prefillOnly, _) = router.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
            Issue.record("expected one instance"); return
        }
        #expect(prefillOnly.hasPrefix("p"))
        // A prefill instance that failed the request is excluded like any other.
        let retried = RoutingRequest(model: "m", prefixHashes: chain(6, 32), promptTokens: 2_048, exclude: ["p0"])
        for _ in 0..<20 {
            guard case .assignPair(let prefill, _, _) = router.decide(retried, instances: disaggregatedPool(), affinity: PrefixAffinityTable())
            else { Issue.record("expected a pair"); return }
            #expect(prefill == "p1")
        }
        // The failed pair recorded the prompt on its decode instance too, but the hand-off never
        // delivered it: the retry is split again rather than computed whole there.
        var recorded = PrefixAffinityTable()
        recorded.record(chain(6, 32), on: "p0")
        recorded.record(chain(6, 32), on: "d0")
        guard case .assignPair(let again, _, _) = router.decide(retried, instances: disaggregatedPool(), affinity: recorded) else {
            Issue.record("expected a pair"); return
        }
        #expect(again == "p1")
        // Both prefill instances failed it: the decode side computes the prompt itself.
        let twice = RoutingRequest(model: "m", prefixHashes: chain(6, 32), promptTokens: 2_048, exclude: ["p0", "p1"])
        guard case .assign(let local, _) = router.decide(twice, instances: disaggregatedPool(), affinity: PrefixAffinityTable()) else {
            Issue.record("expected one instance"); return
        }
        #expect(local.hasPrefix("d"))
    }

    @Test func waitsWhenEveryDecodeInstanceIsSaturatedAndExplainsAnEmptyPool() {
        var router = pdRouter()
        var pool = disaggregatedPool()
        pool[0].load = EngineLoad(running: 200, waiting: 100, kvUsage: 0.99)
        pool[1].load = EngineLoad(running: 200, waiting: 100, kvUsage: 0.99)
        let request = RoutingRequest(model: "m", prefixHashes: chain(7, 32), promptTokens: 2_048)
        guard case .wait = router.decide(request, instances: pool, affinity: PrefixAffinityTable()) else {
            Issue.record("expected wait"); return
        }
        let other = RoutingRequest(model: "other", prefixHashes: [1], promptTokens: 10)
        #expect(router.decide(other, instances: pool, affinity: PrefixAffinityTable()) == .noInstance(reason: "no instance serves model 'other'"))
    }

    /// Over random pools: a pair is always a prefill instance and a decode-side instance, both up,
    /// of the model, not excluded and not saturated; a single assignment never goes to a prefill
    /// instance while a decode-side instance is eligible.
    @Test func neverPairsOrChoosesAnIneligibleInstance() {
        var rng = SplitMix64(seed: 11)
        var router = pdRouter(localPrefill: 256)
        var table = PrefixAffinityTable()
        for _ in 0..<3_000 {
            let pool = randomPool(&rng, otherModelOneIn: 5) { _, rng in [.prefill, .decode, .both][Int(rng.next() % 3)] }
            let excluded: Set<String> = rng.next() % 5 == 0 ? ["i\(rng.next() % 8)"] : []
            let request = RoutingRequest(
                model: "m", prefixHashes: chain(rng.next() % 50, 20), promptTokens: Int(rng.next() % 2_000) + 1, exclude: excluded)
            func usable(_ instance: RoutingInstance) -> Bool {
                instance.state == .up && instance.model == "m" && !excluded.contains(instance.id) && !router.isSaturated(instance)
            }
            let decodeSideEligible = pool.contains {
                $0.state == .up && $0.model == "m" && $0.role != .prefill && !excluded.contains($0.id)
            }
            switch router.decide(request, instances: pool, affinity: table) {
            case .assignPair(let prefill, let decode, _):
                let p = pool.first { $0.id == prefill }!
                let d = pool.first { $0.id == decode }!
                #expect(usable(p) && p.role == .prefill)
                #expect(usable(d) && d.role != .prefill)
                table.record(request.prefixHashes, on: prefill)
            case .assign(let id, _):
                let chosen = pool.first { $0.id == id }!
                #expect(usable(chosen))
                #expect(chosen.role != .prefill || !decodeSideEligible)
                table.record(request.prefixHashes, on: id)
            case .wait, .noInstance:
                #expect(!pool.contains { usable($0) && ($0.role != .prefill || !decodeSideEligible) })
            }
        }
    }
}

@Suite struct AnswerAffinityTests {
    /// A follow-up turn: 20 chunks of history the decode instance d1 served, then 14 chunks of its
    /// answer, then 2 of the new question.
    private func followUp() -> (RoutingRequest, PrefixAffinityTable) {
        var table = PrefixAffinityTable()
        let chain = chain(8, 36)
        table.record(Array(chain.prefix(20)), on: "d1")
        return (RoutingRequest(model: "m", prefixHashes: chain, promptTokens: 36 * 64, lastAnswerChunks: 20..<34), table)
    }

    @Test func theInstanceThatServedTheTurnBeforeHoldsItsAnswer() {
        var router = pdRouter()
        let (request, table) = followUp()
        // 2 new chunks (128 tokens) uncached on d1: no hand-off.
        #expect(router.decide(request, instances: disaggregatedPool(), affinity: table) == .assign(instance: "d1", cachedChunks: 34))
        var prefixCache = Router()
        #expect(
            prefixCache.decide(request, instances: [RoutingInstance(id: "a", model: "m"), RoutingInstance(id: "d1", model: "m")], affinity: table)
                == .assign(instance: "d1", cachedChunks: 34))
    }

    @Test func anAnswerInTheFirstChunkCreditsNobodyAndPrefillInstancesGetNoCredit() {
        var prefixCache = Router()
        let chain = chain(12, 20)
        let cold = [RoutingInstance(id: "a", model: "m"), RoutingInstance(id: "b", model: "m")]
        let secondTurn = RoutingRequest(model: "m", prefixHashes: chain, promptTokens: 20 * 64, lastAnswerChunks: 0..<15)
        guard case .assign(_, let cached) = prefixCache.decide(secondTurn, instances: cold, affinity: PrefixAffinityTable()) else {
            Issue.record("expected an assignment"); return
        }
        #expect(cached == 0)
        // A prefill instance that computed the turn before did not generate its answer.
        var table = PrefixAffinityTable()
        table.record(Array(chain.prefix(5)), on: "p0")
        var router = pdRouter()
        let followUp = RoutingRequest(model: "m", prefixHashes: chain, promptTokens: 20 * 64, lastAnswerChunks: 5..<18)
        guard case .assignPair(_, _, let prefillCached) = router.decide(followUp, instances: disaggregatedPool(), affinity: table) else {
            Issue.record("expected a pair"); return
        }
        #expect(prefillCached == 5)
    }

    @Test func anInstanceThatDoesNotReachTheAnswerGetsNoCreditAndTheRuleCanBeTurnedOff() {
        var router = pdRouter()
        var (request, table) = followUp()
        table = PrefixAffinityTable()
        table.record(Array(request.prefixHashes.prefix(19)), on: "d1")  // one chunk short of the answer
        guard case .assignPair = router.decide(request, instances: disaggregatedPool(), affinity: table) else {
            Issue.record("expected a pair"); return
        }
        (request, table) = followUp()
        router.configuration.answerAffinity = false
        guard case .assignPair = router.decide(request, instances: disaggregatedPool(), affinity: table) else {
            Issue.record("expected a pair"); return
        }
        var prefixCache = Router()
        prefixCache.configuration.answerAffinity = false
        let both = [RoutingInstance(id: "a", model: "m"), RoutingInstance(id: "d1", model: "m")]
        #expect(prefixCache.decide(request, instances: both, affinity: table) == .assign(instance: "d1", cachedChunks: 20))
    }
}
