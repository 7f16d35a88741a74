/// The `expected-ttft` policy: each instance's expected time to first token for this request,
/// in seconds, plus the time the request costs the requests already decoding there; the least
/// wins, with near-ties spread at random.
///
/// - wait: the prompt tokens the instance still has to compute for requests already sent there
///   (`RoutingInstance.prefillBacklogTokens`: the leader's `PrefillEstimate`, which counts every
///   assignment at once and is re-anchored by each report), over its prefill rate;
/// - prefill: this request's uncached prompt tokens (prompt − cached chunks × `chunk_tokens`,
///   at least one token) over the same rate;
/// - interference: computing those tokens stalls every sequence decoding there for about as
///   long: running sequences × prefill time × `decode_interference` (the weight of another
///   request's inter-token delay against this request's wait);
/// - adapter: `adapter_load_tokens` over the rate when the LoRA adapter asked for is not shown
///   loaded there.
///
/// Above `kv_pressure` KV usage the wait counts double (new work there is likely to preempt).
/// Instances whose total is within `near_tie_fraction` of the least (or 1 ms) are equally good:
/// one is drawn at random, so a burst between two reports does not herd onto the instance that
/// happened to score a hair lower.
extension Router {
    public struct TTFTEstimate: Sendable, Equatable {
        public var waitSeconds: Double
        public var prefillSeconds: Double
        public var interferenceSeconds: Double
        public var adapterSeconds: Double
        public var total: Double { waitSeconds + prefillSeconds + interferenceSeconds + adapterSeconds }
    }

    public func expectedTTFT(_ request: RoutingRequest, _ instance: RoutingInstance, cachedChunks: Int) -> TTFTEstimate {
        let rate = max(1, instance.prefillTokensPerSecond ?? configuration.prefillTokensPerSecond)
        let uncached = max(1, Double(request.promptTokens) - Double(cachedChunks) * configuration.chunkTokens)
        let load = freshLoad(instance)
        var wait = instance.prefillBacklogTokens / rate
        if let load, load.kvUsage > configuration.kvPressure { wait *= 2 }
        let prefill = uncached / rate
        let running = Double(load.map { $0.running + instance.inFlightSinceReport } ?? instance.inFlight)
        return TTFTEstimate(
            waitSeconds: wait, prefillSeconds: prefill, interferenceSeconds: running * prefill * configuration.decodeInterference,
            adapterSeconds: adapterLoadCost(request, instance) / rate)
    }

    /// A candidate whose cost is within `near_tie_fraction` of the least (at least 1 ms): `preferred`
    /// when it is one, else drawn at random among all such.
    mutating func nearlyCheapest(_ candidates: [Int], costs: [Double], preferring preferred: Int? = nil) -> Int {
        let least = costs.min() ?? 0
        let bound = least + max(0.001, least * configuration.nearTieFraction)
        if let preferred, let position = candidates.firstIndex(of: preferred), costs[position] <= bound { return preferred }
        var chosen = candidates[0]
        var ties = 0
        for (candidate, cost) in zip(candidates, costs) where cost <= bound {
            ties += 1
            if rng.next() % UInt64(ties) == 0 { chosen = candidate }
        }
        return chosen
    }
}
