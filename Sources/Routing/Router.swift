import Seeded

/// The scheduling policies: given a request, the instances and the affinity table, choose an
/// instance. A value with no clock or I/O; its only state is the round-robin cursor and the
/// seeded generator that breaks ties, so a test can replay any sequence of decisions.
public struct Router: Sendable {
    public var configuration: PolicyConfiguration
    private var rng: SplitMix64
    private var roundRobinCursor = 0

    public init(configuration: PolicyConfiguration = PolicyConfiguration(), seed: UInt64 = 0x5EED) {
        self.configuration = configuration
        rng = SplitMix64(seed: seed)
    }

    public mutating func decide(
        _ request: RoutingRequest, instances: [RoutingInstance], affinity: PrefixAffinityTable
    ) -> RoutingDecision {
        let ofModel = instances.filter { $0.model == request.model }
        guard !ofModel.isEmpty else { return .noInstance(reason: "no instance serves model '\(request.model)'") }
        let eligible = ofModel.filter { $0.state == .up && $0.role != .prefill && !request.exclude.contains($0.id) }
        guard !eligible.isEmpty else {
            let up = ofModel.filter { $0.state == .up }
            return .noInstance(
                reason: up.isEmpty
                    ? "no instance of model '\(request.model)' is up"
                    : "every up instance of model '\(request.model)' already failed this request")
        }
        let open = eligible.filter { !isSaturated($0) }
        guard !open.isEmpty else {
            return .wait(
                retryAfterMilliseconds: configuration.retryAfterMilliseconds,
                reason: "all \(eligible.count) instances of model '\(request.model)' are saturated")
        }
        switch configuration.name {
        case .roundRobin:
            let ordered = open.sorted { $0.id < $1.id }
            let chosen = ordered[roundRobinCursor % ordered.count]
            roundRobinCursor &+= 1
            return .assign(instance: chosen.id, cachedChunks: 0)
        case .leastRequest:
            return .assign(instance: cheapest(open, costs: open.map { Double($0.inFlight) }).id, cachedChunks: 0)
        case .llmMetrics:
            return .assign(instance: cheapest(open, costs: open.map(queuedTokens)).id, cachedChunks: 0)
        case .prefixCache:
            let matched = affinity.matches(for: request.prefixHashes)
            let costs = open.map { expectedCost(request, $0, cachedChunks: matched[$0.id] ?? 0) }
            let chosen = cheapest(open, costs: costs)
            return .assign(instance: chosen.id, cachedChunks: matched[chosen.id] ?? 0)
        }
    }

    /// prefix-cache's cost of sending `request` to `instance`, in prompt-token equivalents: the
    /// prompt tokens it would have to compute, plus the work queued ahead of it there.
    public func expectedCost(_ request: RoutingRequest, _ instance: RoutingInstance, cachedChunks: Int) -> Double {
        let cached = Double(cachedChunks) * configuration.chunkTokens
        let uncached = max(0, Double(request.promptTokens) - cached)
        return uncached + configuration.loadWeight * queuedTokens(instance)
    }

    /// The work ahead of a newcomer on an instance, in prompt-token equivalents. From the
    /// engine's report while it is fresh (plus what was sent since), else from the scheduler's
    /// own count of requests in flight.
    public func queuedTokens(_ instance: RoutingInstance) -> Double {
        guard let load = freshLoad(instance) else {
            return Double(instance.inFlight) * configuration.queuedRequestTokens
        }
        var tokens = Double(load.waiting + instance.inFlightSinceReport) * configuration.queuedRequestTokens
            + Double(load.running) * configuration.runningSequenceTokens
        if load.kvUsage > configuration.kvPressure { tokens *= 2 }
        return tokens
    }

    public func isSaturated(_ instance: RoutingInstance) -> Bool {
        guard let load = freshLoad(instance) else { return false }
        return load.waiting >= configuration.saturatedWaiting && load.kvUsage >= configuration.saturatedKVUsage
    }

    private func freshLoad(_ instance: RoutingInstance) -> EngineLoad? {
        guard let load = instance.load, load.ageMilliseconds <= configuration.staleReportMilliseconds else { return nil }
        return load
    }

    /// The instance of least cost; ties (within a millionth of a token) broken at random, so equal
    /// instances share the traffic instead of the first in the list taking it all.
    private mutating func cheapest(_ candidates: [RoutingInstance], costs: [Double]) -> RoutingInstance {
        var best: [RoutingInstance] = []
        var bestCost = Double.infinity
        for (candidate, value) in zip(candidates, costs) {
            if value < bestCost - 1e-6 {
                bestCost = value
                best = [candidate]
            } else if abs(value - bestCost) <= 1e-6 {
                best.append(candidate)
            }
        }
        return best.count == 1 ? best[0] : best[Int(rng.next() % UInt64(best.count))]
    }
}
