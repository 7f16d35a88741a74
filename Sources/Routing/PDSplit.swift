/// The `pd-split` policy: prefill/decode disaggregation.
///
/// A request whose prompt is mostly uncached is split: a `prefill` instance computes the prompt
/// (chosen by prefix affinity traded against the prompt work queued there, as `prefix-cache`
/// does) and hands its KV cache to a `decode` instance (chosen by decode load: sequences running
/// and waiting there, doubled under KV pressure), which generates. A request whose uncached part
/// is at most `pdLocalPrefillTokens` is not worth a hand-off (the transfer and the second hop
/// cost more than computing a short prompt in the decode batch): it goes whole to the decode
/// (or `both`) instance that prefix-cache would choose among them, as Dynamo's conditional
/// disaggregation does. So does a request while every prefill instance already has
/// `pdMaxPrefillQueue` prompts outstanding: the prefill side is backed up, and the decode side
/// computes the prompt rather than wait. When one side has no instance that can take it, the
/// request goes whole to the other side by prefix-cache's rule.
extension Router {
    mutating func decidePDSplit(
        _ request: RoutingRequest, instances: [RoutingInstance], affinity: PrefixAffinityTable, overlay: AffinityOverlay
    ) -> RoutingDecision {
        let decoders = Candidates(request, instances, saturated: { isFull($0, for: request.headroom) }) { $0 != .prefill }
        let prefillers = Candidates(request, instances, saturated: { isFull($0, for: request.headroom) }) { $0 == .prefill }
        if decoders.eligible.isEmpty {
            // No decode side to hand off to: prefill instances serve whole requests (vLLM's can).
            if let refusal = prefillers.refusal(request, configuration: configuration) { return refusal }
            return chooseOrdinary(.prefixCache, request, among: prefillers.open, instances: instances, affinity: affinity, overlay: overlay)
        }
        if let refusal = decoders.refusal(request, configuration: configuration) { return refusal }
        let local = cheapestWithCache(request, among: decoders.open, instances: instances, affinity: affinity, overlay: overlay)
        // A retry after a failed prefill leg: the decode side's record of this prompt came from
        // the hand-off that failed, which never delivered it.
        let handOffFailed = instances.contains { $0.role == .prefill && request.exclude.contains($0.id) }
        let uncachedLocally = handOffFailed
            ? Double(request.promptTokens) : Double(request.promptTokens) - Double(local.cachedChunks) * configuration.chunkTokens
        let whole = RoutingDecision.assign(instance: instances[local.index].id, cachedChunks: local.cachedChunks)
        if uncachedLocally <= Double(configuration.pdLocalPrefillTokens) || prefillers.open.isEmpty { return whole }
        // A backed-up prefill instance would add its whole queue to the request's wait; when every
        // one is backed up, compute the prompt where it will be decoded instead (Dynamo's
        // max_prefill_queue_size).
        let ready = prefillers.open.filter { instances[$0].inFlight < configuration.pdMaxPrefillQueue }
        guard !ready.isEmpty else { return whole }
        let prefill = cheapestWithCache(request, among: ready, instances: instances, affinity: affinity, overlay: overlay)
        let decode = cheapest(decoders.open, costs: decoders.open.map { decodeLoad(instances[$0]) })
        return .assignPair(prefill: instances[prefill.index].id, decode: instances[decode].id, cachedChunks: prefill.cachedChunks)
    }

    /// pd-split's load of a decode instance, in sequences: those running and waiting there by its
    /// latest report plus those sent since, counted double when its KV cache is under pressure
    /// (new sequences there would soon be preempted); the scheduler's in-flight count while no
    /// fresh report is at hand.
    public func decodeLoad(_ instance: RoutingInstance) -> Double {
        guard let load = freshLoad(instance) else { return Double(instance.inFlight) }
        let sequences = Double(load.running + load.waiting + instance.inFlightSinceReport)
        return load.kvUsage > configuration.kvPressure ? sequences * 2 : sequences
    }
}
