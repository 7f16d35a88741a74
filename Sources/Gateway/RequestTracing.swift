import GatewayCore
import NIOHTTP1
import Tracing
import Wire

/// The live spans of one traced request: carries out what `RequestTracePlan` decides, with the
/// plan's moments as the spans' timestamps. Made only when the gateway has a tracer, so a
/// gateway without a `tracing` section does none of this. Lives on its request's event loop.
final class RequestTracing {
    private let tracer: any Tracer
    private var plan = RequestTracePlan()
    private var spans: [RequestTracePlan.SpanKey: any Span] = [:]
    /// The client's trace (from its `traceparent`), or an empty context: the request's span
    /// then starts a trace of its own.
    private let parent: InstrumentationContext
    private let rootName: String
    private let rootAttributes: SpanAttributes
    /// Nanoseconds since the epoch at moment zero of the gateway's clock.
    private let epochAtZero: Int64
    /// False when the sampler dropped the request's span: no further spans are made, but the
    /// engine and the scheduler still get the (unsampled) context, so they do not sample it.
    private var recording = true

    init(tracer: any Tracer, clientHeaders: HTTPHeaders, name: String, attributes: SpanAttributes, now: Moment) {
        self.tracer = tracer
        var context = InstrumentationContext.topLevel
        let carrier = Self.clientTraceContext(clientHeaders)
        if !carrier.isEmpty { tracer.extract(carrier, into: &context, using: DictionaryExtractor()) }
        parent = context
        rootName = name
        rootAttributes = attributes
        epochAtZero = Int64(clamping: DefaultTracerClock.now.nanosecondsSinceEpoch) - Self.nanoseconds(now)
    }

    /// After the lifecycle handled `event` at `now` and answered `directives`, before the shell
    /// carries them out (an engine leg's span must exist before its request is sent).
    func observe(_ event: LifecycleEvent, answered directives: [LifecycleDirective], now: Moment) {
        // An unsampled request keeps only its context: no plan, no spans, nothing exported.
        guard recording else { return }
        for directive in plan.observe(event, answered: directives, now: now) { apply(directive) }
    }

    /// Puts the context of this leg's engine span (or the request's) into the engine request's
    /// headers as `traceparent` (and `tracestate`), replacing the client's.
    func inject(into headers: inout HTTPHeaders, leg: Leg, attempt: Int) {
        let span = spans[RequestTracePlan.SpanKey(.engine, leg: leg, attempt: attempt)] ?? spans[RequestTracePlan.SpanKey(.request)]
        // The client's own values go: a `tracestate` must not outlive the `traceparent` it belongs to.
        headers.remove(name: "traceparent")
        headers.remove(name: "tracestate")
        tracer.inject(span?.context ?? parent, into: &headers, using: HTTPHeadersInjector())
    }

    /// The schedule span's context as a `traceparent` value for `ScheduleRequest`, or "".
    func scheduleTraceparent() -> String {
        let span = spans[RequestTracePlan.SpanKey(.schedule)] ?? spans[RequestTracePlan.SpanKey(.request)]
        var carrier: [String: String] = [:]
        tracer.inject(span?.context ?? parent, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"] ?? ""
    }

    private func apply(_ directive: RequestTracePlan.Directive) {
        switch directive {
        case .begin(let key, let at):
            guard recording else { return }
            let context = key.parent.flatMap { spans[$0]?.context } ?? parent
            let span = tracer.startSpan(
                key.kind == .request ? rootName : key.name, context: context, ofKind: Self.kind(key.kind), at: instant(at))
            if key.kind == .request {
                span.attributes = rootAttributes
                recording = span.isRecording
            }
            spans[key] = span
        case .attribute(let key, let name, let value):
            guard let span = spans[key], span.isRecording else { return }
            switch value {
            case .string(let text): span.attributes[name] = text
            case .int(let number): span.attributes[name] = number
            case .bool(let flag): span.attributes[name] = flag
            }
        case .end(let key, let at, let error):
            // The request's span stays in the table: late engine legs still need its context.
            guard let span = key.kind == .request ? spans[key] : spans.removeValue(forKey: key) else { return }
            if let error { span.setStatus(SpanStatus(code: .error, message: error)) }
            span.end(at: instant(at))
        }
    }

    private func instant(_ moment: Moment) -> DefaultTracerClock.Instant {
        let nanoseconds = epochAtZero + Self.nanoseconds(moment)
        return DefaultTracerClock.Instant(nanosecondsSinceEpoch: UInt64(clamping: max(0, nanoseconds)))
    }

    /// The client's `traceparent` when it is well formed, with its `tracestate` (bounded): only
    /// these reach the tracer, so a malformed value starts a new trace, as W3C asks, and no other
    /// header (an API key) can end up in the tracer's log.
    static func clientTraceContext(_ headers: HTTPHeaders) -> [String: String] {
        guard let parent = headers.first(name: "traceparent"), TraceParent.isValid(parent) else { return [:] }
        var carrier = ["traceparent": parent]
        if let state = headers.first(name: "tracestate"), state.utf8.count <= 512 { carrier["tracestate"] = state }
        return carrier
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    private static func kind(_ kind: RequestTracePlan.SpanKind) -> SpanKind {
        switch kind {
        case .request: .server
        case .schedule, .engine: .client
        case .queueWait, .connect, .firstToken, .stream: .internal
        }
    }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}

struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) { carrier.replaceOrAdd(name: key, value: value) }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
