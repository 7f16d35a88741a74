import Tracing
import Wire

/// The leader's decision as a span of the gateway's trace. Only a request that carries a
/// well-formed, sampled `traceparent` is traced: the scheduler starts no traces of its own, and
/// the gateway's sampling decision holds here too.
extension SchedulerNode {
    func decisionSpan(_ request: ScheduleRequest) -> (any Span)? {
        // An unsampled context has nothing to join: no span at all (the sampler would drop it).
        guard let tracer, TraceParent.isSampled(request.traceparent) else { return nil }
        var context = InstrumentationContext.topLevel
        tracer.extract(["traceparent": request.traceparent], into: &context, using: TraceParentExtractor())
        let span = tracer.startSpan("decide", context: context, ofKind: .server)
        guard span.isRecording else {
            span.end()
            return nil
        }
        span.attributes["junction.request_id"] = request.requestID
        span.attributes["gen_ai.request.model"] = request.model
        span.attributes["junction.prefix_chunks"] = request.prefixHashes.count
        span.attributes["junction.scheduler_id"] = Int(clamping: id)
        if !request.excludeInstances.isEmpty { span.attributes["junction.excluded_instances"] = request.excludeInstances.count }
        return span
    }
}

struct TraceParentExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
