import Seeded

/// The scheduling policies: given a request, the instances and the affinity table, choose an
/// instance. A value with no clock or I/O; its only state is the round-robin cursor and the
/// seeded generator that breaks ties, so a test can replay any sequence of decisions.
public struct Router: Sendable {
    public var configuration: PolicyConfiguration
    var rng: SplitMix64
    private var roundRobinCursor = 0

    public init(configuration: PolicyConfiguration = PolicyConfiguration(), seed: UInt64 = 0x5EED) {
        self.configuration = configuration
        rng = SplitMix64(seed: seed)
    }

    /// Chooses an instance. `instances` should come in a stable order (the scheduler keeps
    /// them sorted by id): round-robin cycles through that order.
    ///
    /// `overlay` adds affinity not yet in `affinity` (the leader's uncommitted decisions).
    public mutating func decide(
        _ request: RoutingRequest, instances: [RoutingInstance], affinity: PrefixAffinityTable,
        overlay: AffinityOverlay = AffinityOverlay()
    ) -> RoutingDecision {
        if configuration.name == .pdSplit {
            return decidePDSplit(request, instances: instances, affinity: affinity, overlay: overlay)
        }
        let pool = Candidates(request, instances, saturated: { isFull($0, for: request.headroom) }) { $0 != .prefill }
        if let refusal = pool.refusal(request, configuration: configuration) { return refusal }
        return chooseOrdinary(configuration.name, request, among: pool.open, instances: instances, affinity: affinity, overlay: overlay)
    }

    /// One instance for the whole request by the named single-instance policy.
    mutating func chooseOrdinary(
        _ policy: PolicyConfiguration.Name, _ request: RoutingRequest, among open: [Int], instances: [RoutingInstance],
        affinity: PrefixAffinityTable, overlay: AffinityOverlay
    ) -> RoutingDecision {
        // Session affinity breaks ties: the instance that served the conversation last, when it
        // costs no more than the others the policy would draw from.
        let preferred = request.sessionInstance.flatMap { session in open.first { instances[$0].id == session } }
        switch policy {
        case .roundRobin:
            let chosen = open[roundRobinCursor % open.count]
            roundRobinCursor &+= 1
            return .assign(instance: instances[chosen].id, cachedChunks: 0)
        case .leastRequest:
            let chosen = cheapest(open, costs: open.map { Double(instances[$0].inFlight) }, preferring: preferred)
            return .assign(instance: instances[chosen].id, cachedChunks: 0)
        case .llmMetrics:
            let chosen = cheapest(
                open, costs: open.map { queuedTokens(instances[$0]) + adapterLoadCost(request, instances[$0]) }, preferring: preferred,
                within: configuration.chunkTokens)
            return .assign(instance: instances[chosen].id, cachedChunks: 0)
        case .prefixCache, .pdSplit:
            let (chosen, cached) = cheapestWithCache(
                request, among: open, instances: instances, affinity: affinity, overlay: overlay, preferring: preferred)
            return .assign(instance: instances[chosen].id, cachedChunks: cached)
        case .expectedTTFT:
            let cached = cachedChunks(request, among: open, instances: instances, affinity: affinity, overlay: overlay)
            let costs = zip(open, cached).map { expectedTTFT(request, instances[$0], cachedChunks: $1).total }
            let chosen = nearlyCheapest(open, costs: costs, preferring: preferred)
            return .assign(instance: instances[chosen].id, cachedChunks: cached[open.firstIndex(of: chosen)!])
        }
    }

    /// prefix-cache's choice among `open`: the least `expectedCost`, and the chunks believed
    /// cached there.
    mutating func cheapestWithCache(
        _ request: RoutingRequest, among open: [Int], instances: [RoutingInstance], affinity: PrefixAffinityTable,
        overlay: AffinityOverlay, preferring preferred: Int? = nil
    ) -> (index: Int, cachedChunks: Int) {
        let cached = cachedChunks(request, among: open, instances: instances, affinity: affinity, overlay: overlay)
        let costs = zip(open, cached).map { expectedCost(request, instances[$0], cachedChunks: $1) }
        let chosen = cheapest(open, costs: costs, preferring: preferred, within: configuration.chunkTokens)
        return (chosen, cached[open.firstIndex(of: chosen)!])
    }

    /// For each of `open`, the leading chunks of the request's prompt believed cached there: by
    /// the committed affinity table, the leader's decisions not yet committed, and (chat) the
    /// answer the instance that served the turn before generated.
    func cachedChunks(
        _ request: RoutingRequest, among open: [Int], instances: [RoutingInstance], affinity: PrefixAffinityTable,
        overlay: AffinityOverlay
    ) -> [Int] {
        let matched = affinity.match(request.prefixHashes)
        let recent = overlay.cachedChunks(for: request.prefixHashes)
        // An answer starting in chunk 0 says nothing about who served the turn before: every
        // instance "holds" the empty chain in front of it.
        let answer = configuration.answerAffinity ? request.lastAnswerChunks.flatMap { $0.lowerBound > 0 ? $0 : nil } : nil
        return open.map { index in
            let id = instances[index].id
            let known = max(matched.isEmpty ? 0 : matched.cachedChunks(of: id), recent[id] ?? 0)
            // The instance that served the turn before holds the answer it generated, too (a
            // prefill instance generated one token of it, so not).
            if let answer, known >= answer.lowerBound, instances[index].role != .prefill { return max(known, answer.upperBound) }
            return known
        }
    }

    /// The leading chunks of the request's prompt believed cached on the instance `id`, by the
    /// same reckoning as a decision's (0 for an instance not in `instances`).
    public func cachedChunks(
        on id: String, _ request: RoutingRequest, instances: [RoutingInstance], affinity: PrefixAffinityTable, overlay: AffinityOverlay
    ) -> Int {
        guard let index = instances.firstIndex(where: { $0.id == id }) else { return 0 }
        return cachedChunks(request, among: [index], instances: instances, affinity: affinity, overlay: overlay)[0]
    }

    /// prefix-cache's cost of sending `request` to `instance`, in prompt-token equivalents: the
    /// prompt tokens it would have to compute, plus the work queued ahead of it there.
    public func expectedCost(_ request: RoutingRequest, _ instance: RoutingInstance, cachedChunks: Int) -> Double {
        let cached = Double(cachedChunks) * configuration.chunkTokens
        let uncached = max(0, Double(request.promptTokens) - cached)
        return uncached + configuration.loadWeight * queuedTokens(instance) + adapterLoadCost(request, instance)
    }

    /// What it costs, in prompt-token equivalents, that `request` asks for a LoRA adapter the
    /// instance does not hold loaded by its fresh report (or that it has no fresh report to tell):
    /// the engine loads it before the first step, or holds the request until a slot frees. Zero
    /// for the base model.
    public func adapterLoadCost(_ request: RoutingRequest, _ instance: RoutingInstance) -> Double {
        guard instance.isAdapter(request.model) else { return 0 }
        if let load = freshLoad(instance), load.loadedAdapters.contains(request.model) { return 0 }
        return configuration.adapterLoadTokens
    }

    /// The work ahead of a newcomer on an instance, in prompt-token equivalents. From the
    /// engine's report while it is fresh (plus what was sent since), else from the scheduler's
    /// own count of requests in flight.
    ///
    /// While the engine admits what it is sent (nothing waiting, KV cache not under pressure),
    /// a request sent since the report weighs what it will be by the next one: its own uncached
    /// prompt to compute, then one more running sequence. A burst of new conversations then
    /// spreads by the work each brings, so one engine does not get the long prompts while
    /// another gets the short ones. Once the engine queues, what is sent there queues too: the
    /// requests sent since weigh, together, at least as much as as many waiting requests.
    /// `llm-metrics` and `pd-split` weigh queued work the same way.
    public func queuedTokens(_ instance: RoutingInstance) -> Double {
        guard let load = freshLoad(instance) else {
            return Double(instance.inFlight) * configuration.queuedRequestTokens
        }
        let sent = Double(instance.inFlightSinceReport)
        let underPressure = load.kvUsage > configuration.kvPressure
        var sentTokens = instance.sentSinceReportTokens ?? sent * configuration.queuedRequestTokens
        if load.waiting > 0 || underPressure { sentTokens = max(sentTokens, sent * configuration.queuedRequestTokens) }
        var tokens = Double(load.waiting) * configuration.queuedRequestTokens + sentTokens
            + (Double(load.running) + sent) * configuration.runningSequenceTokens
        if underPressure { tokens *= 2 }
        return tokens
    }

    /// Whether the request continuing one just sent to `instance` may go there without asking
    /// (a reuse grant): under a policy that grants them, while the instance's fresh report shows
    /// nothing waiting and its KV cache not under pressure, and the prompt work sent there and
    /// not yet computed (`prefillBacklogTokens`, the request just sent included) is at most one
    /// typical request's (`queuedRequestTokens`). An engine that queues or has a long prompt to
    /// compute (an opening burst of new conversations, an overloaded node) may soon be the wrong
    /// place for a conversation's next turn, so those turns are decided one by one; an instance
    /// not yet reported on gets no grant either.
    public func grantsReuse(on instance: RoutingInstance) -> Bool {
        guard configuration.grantsReuse, let load = freshLoad(instance) else { return false }
        return load.waiting == 0 && load.kvUsage <= configuration.kvPressure
            && instance.prefillBacklogTokens <= configuration.queuedRequestTokens
    }

    public func isSaturated(_ instance: RoutingInstance) -> Bool {
        guard let load = freshLoad(instance) else { return false }
        return load.waiting >= configuration.saturatedWaiting && load.kvUsage >= configuration.saturatedKVUsage
    }

    /// Whether `instance` takes no request that asks for `headroom` (nil: saturation alone). An
    /// instance without a fresh report is judged by saturation only, as everywhere: nothing says
    /// it is full.
    public func isFull(_ instance: RoutingInstance, for headroom: RoutingHeadroom?) -> Bool {
        if isSaturated(instance) { return true }
        guard let headroom else { return false }
        if headroom.maxPrefillSeconds > 0 {
            let rate = max(1, instance.prefillTokensPerSecond ?? configuration.prefillTokensPerSecond)
            if instance.prefillBacklogTokens / rate >= headroom.maxPrefillSeconds { return true }
        }
        guard let load = freshLoad(instance) else { return false }
        if load.waiting > headroom.maxWaiting || load.kvUsage > headroom.maxKVUsage { return true }
        // At most `maxRunning` once this one runs too.
        return headroom.maxRunning > 0 && load.running + instance.inFlightSinceReport >= headroom.maxRunning
    }

    func freshLoad(_ instance: RoutingInstance) -> EngineLoad? {
        guard let load = instance.load, load.ageMilliseconds <= configuration.staleReportMilliseconds else { return nil }
        return load
    }

    /// The index of least cost; ties (within a millionth of a token) are broken at random, so
    /// equal instances share the traffic instead of the first in the list taking it all.
    /// `preferred` (the session's instance) wins when it costs at most `tolerance` more than the
    /// least: token-cost policies pass one chunk, less than their estimates can tell apart (a
    /// report taken while the session's previous turn ran shows one more running sequence there).
    mutating func cheapest(_ candidates: [Int], costs: [Double], preferring preferred: Int? = nil, within tolerance: Double = 0) -> Int {
        if let preferred, let position = candidates.firstIndex(of: preferred), let least = costs.min(),
            costs[position] <= least + max(1e-6, tolerance)
        {
            return preferred
        }
        var bestCost = Double.infinity
        var ties = 0
        var chosen = candidates[0]
        for (candidate, value) in zip(candidates, costs) {
            if value < bestCost - 1e-6 {
                bestCost = value
                chosen = candidate
                ties = 1
            } else if abs(value - bestCost) <= 1e-6 {
                // Reservoir sampling: each of the tied candidates ends up chosen with equal chance.
                ties += 1
                if rng.next() % UInt64(ties) == 0 { chosen = candidate }
            }
        }
        return chosen
    }
}
