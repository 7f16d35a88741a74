import Prometheus
import Synchronization

/// The gateway's `/metrics` (swift-prometheus). Covers the seed's monitoring list: request
/// counts, TTFT and TPOT measured from the answers, token throughput (token counters), and the
/// gateway's own health: in flight, waiting, retries, fallback, scheduler latency, upstream errors.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let inFlightGauge: Gauge
    private let pendingGauge: Gauge
    private let fallbackGauge: Gauge
    private let budgetShareGauge: Gauge
    private let budgetGatewaysGauge: Gauge
    private let ttft: ValueHistogram
    private let tpot: ValueHistogram
    private let schedulerLatency: ValueHistogram
    private let promptTokens: Counter
    private let completionTokens: Counter
    private let retries: Counter
    private let queueRejected: Counter
    private let cancelled: Counter
    private let gaveUp: Counter
    private let unauthenticatedRequests: Counter
    /// Labelled counters by their label values: found here without building their names again.
    private let labelled = Mutex<[String: Counter]>([:])

    private func counter(_ metric: String, _ help: String, _ labels: [(String, String)]) -> Counter {
        let key = metric + labels.map { "|" + $0.1 }.joined()
        if let found = labelled.withLock({ $0[key] }) { return found }
        let made = registry.makeCounter(descriptor: Self.name(metric, "total", help), labels: labels)
        labelled.withLock { $0[key] = made }
        return made
    }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "junction", subsystem: "gateway", metricName: metric, unitName: unit, helpText: help)
    }

    init() {
        inFlightGauge = registry.makeGauge(descriptor: Self.name("requests_in_flight", "", "Requests being answered now."))
        pendingGauge = registry.makeGauge(descriptor: Self.name("requests_pending", "", "Requests waiting for an engine with room."))
        fallbackGauge = registry.makeGauge(descriptor: Self.name("fallback", "", "1 while no scheduler answers and routing is round-robin."))
        budgetShareGauge = registry.makeGauge(
            descriptor: Self.name(
                "tenant_limits_local", "", "1 while tenant limits are this gateway's share (the leader does not lease cluster-wide budgets)."))
        budgetGatewaysGauge = registry.makeGauge(
            descriptor: Self.name(
                "tenant_limits_gateways", "", "Gateways sharing tenants' budgets, as the leader last counted them: the divisor of each limit in fallback."))
        budgetGatewaysGauge.set(to: 1)
        let latencyBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
        ttft = registry.makeValueHistogram(
            descriptor: Self.name("time_to_first_token", "seconds", "From request to the first byte of the answer."), buckets: latencyBuckets)
        tpot = registry.makeValueHistogram(descriptor: Self.name("time_per_output_token", "seconds", "(end - first token) / (completion tokens - 1)."), buckets: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1])
        schedulerLatency = registry.makeValueHistogram(descriptor: Self.name("schedule", "seconds", "Time to get a routing decision (scheduler or fallback)."), buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1])
        promptTokens = registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens of answered requests (engine usage)."))
        completionTokens = registry.makeCounter(descriptor: Self.name("completion_tokens", "total", "Completion tokens of answered requests."))
        retries = registry.makeCounter(descriptor: Self.name("retries", "total", "Attempts on another instance after one failed."))
        queueRejected = registry.makeCounter(descriptor: Self.name("queue_rejected", "total", "Requests answered 429 because the wait queue was full."))
        cancelled = registry.makeCounter(descriptor: Self.name("client_cancelled", "total", "Answers cut short because the client went away."))
        gaveUp = registry.makeCounter(descriptor: Self.name("upstream_gave_up", "total", "Requests no instance could serve after every retry."))
        unauthenticatedRequests = registry.makeCounter(
            descriptor: Self.name("unauthenticated_requests", "total", "Requests refused 401 for a missing or unknown API key."))
    }

    func requestStarted() { inFlightGauge.increment() }
    func requestEnded() { inFlightGauge.decrement() }
    func pending(_ count: Int) { pendingGauge.set(to: Double(count)) }
    func fallback(_ on: Bool) { fallbackGauge.set(to: on ? 1 : 0) }
    /// A lease call to the leader for tenants' budgets: `granted` or `failed`.
    func budgetLease(outcome: String) { budgetLeaseCounter(outcome).increment() }

    /// Makes both outcomes' series at start (with cluster budgets on), so the page's series do
    /// not change with the first call's outcome.
    func declareBudgetLeases() {
        for outcome in ["granted", "failed"] { _ = budgetLeaseCounter(outcome) }
    }

    private func budgetLeaseCounter(_ outcome: String) -> Counter {
        counter("budget_leases", "Lease calls for tenants' cluster-wide budgets, by outcome.", [("outcome", outcome)])
    }
    func budgetShare(leased: Bool) { budgetShareGauge.set(to: leased ? 0 : 1) }
    func budgetGateways(_ count: Int) { budgetGatewaysGauge.set(to: Double(count)) }
    func scheduled(in duration: Duration, route: String) {
        schedulerLatency.record(duration / .seconds(1))
        counter("routing_decisions", "Routing decisions by how they were made.", [("route", route)]).increment()
    }
    /// A notice to the leader of a request sent under a reuse grant: `booked`, `not_booked` (the
    /// leader refused it or did not answer), `not_sent` (no connection to the leader on its loop).
    func reuseNotice(_ outcome: String) {
        counter("reuse_notices", "Notices to the leader of requests sent under a reuse grant, by outcome.", [("outcome", outcome)]).increment()
    }
    func retried() { retries.increment() }
    func rejectedQueueFull() { queueRejected.increment() }
    func clientCancelled() { cancelled.increment() }
    func upstreamGaveUp() { gaveUp.increment() }

    func handoff(flow: String, outcome: String) {
        counter("pd_handoffs", "pd-split hand-offs by flow (vllm, sglang) and outcome.", [("flow", flow), ("outcome", outcome)]).increment()
    }

    func upstreamError(_ instance: String) {
        counter("upstream_errors", "Engine failures seen by this gateway, per instance.", [("instance_id", instance)]).increment()
    }

    /// The paths requests are counted under: the known routes, and `other` for the rest, so a
    /// client sending random paths cannot grow the series without bound.
    static let knownPaths: Set<String> = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/v1/ws"]

    static func pathLabel(_ path: String) -> String { knownPaths.contains(path) ? path : "other" }

    /// `instance` comes from the scheduler's or the cached table's ids, which the operator bounds.
    func answered(path: String, status: Int, instance: String?) {
        counter(
            "requests", "Answered requests by path (known routes, else other), status and instance.",
            [("path", Self.pathLabel(path)), ("status", String(status)), ("instance_id", instance ?? "")]
        ).increment()
    }

    func unauthenticated() { unauthenticatedRequests.increment() }

    /// Per client (`llm_gateway.api_keys`: the operator bounds the names): answers by status, and
    /// the tokens of the answers relayed.
    func answered(client: String, status: Int, usage: StreamMeter.Usage?) {
        counter("client_requests", "Answered requests by client (its API key's name) and status.", [("client", client), ("status", String(status))])
            .increment()
        guard status < 400, let usage else { return }
        counter("client_tokens", "Tokens of relayed answers by client and kind (prompt, completion).", [("client", client), ("kind", "prompt")])
            .increment(by: Int64(usage.prompt))
        counter("client_tokens", "Tokens of relayed answers by client and kind (prompt, completion).", [("client", client), ("kind", "completion")])
            .increment(by: Int64(usage.completion))
    }

    // MARK: - Tenants (flow control; the names are the configured tenants', so the series are bounded)

    /// Requests by tenant, class and what flow control did: `admitted`, `refused_concurrency`,
    /// `refused_requests`, `refused_tokens` (its limits), `shed` (the full queue), `expired` (its
    /// class's time to live ran out while it waited).
    func tenantRequest(tenant: String, class name: String, outcome: String) {
        counter(
            "tenant_requests", "Requests by tenant, priority class and flow-control outcome.",
            [("tenant", tenant), ("class", name), ("outcome", outcome)]
        ).increment()
    }

    private let tenantGauges = Mutex<[String: Gauge]>([:])
    private let tenantWaits = Mutex<[String: ValueHistogram]>([:])

    /// Requests of `tenant` waiting now: in the queue, or woken from it and asking the scheduler.
    func tenantQueued(tenant: String, waiting: Int) {
        let gauge = tenantGauges.withLock { gauges in
            if let found = gauges[tenant] { return found }
            let made = registry.makeGauge(
                descriptor: Self.name("tenant_queued", "", "Requests waiting in the queue, by tenant."), labels: [("tenant", tenant)])
            gauges[tenant] = made
            return made
        }
        gauge.set(to: Double(waiting))
    }

    /// How long a request waited in the queue before it was sent to an engine (0 if it did not).
    func tenantQueueWait(tenant: String, seconds: Double) {
        let histogram = tenantWaits.withLock { histograms in
            if let found = histograms[tenant] { return found }
            let made = registry.makeValueHistogram(
                descriptor: Self.name("tenant_queue_wait", "seconds", "Time in the wait queue before going to an engine, by tenant."),
                labels: [("tenant", tenant)], buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300])
            histograms[tenant] = made
            return made
        }
        histogram.record(seconds)
    }

    /// Tokens the engines served a tenant (their usage).
    func tenantTokens(tenant: String, prompt: Int, completion: Int) {
        let help = "Tokens served by tenant and kind (prompt, completion), from the engines' usage."
        counter("tenant_tokens", help, [("tenant", tenant), ("kind", "prompt")]).increment(by: Int64(prompt))
        counter("tenant_tokens", help, [("tenant", tenant), ("kind", "completion")]).increment(by: Int64(completion))
    }

    func fallbackTransition(entered: Bool) {
        counter("fallback_transitions", "Changes between scheduled and fallback routing.", [("to", entered ? "fallback" : "scheduled")]).increment()
    }

    /// TPOT only for streamed answers: a whole answer's first byte comes with its last, so
    /// (end - first byte) says nothing of the time per token. It needs the answer's usage, which
    /// a stream carries only when its client set `stream_options.include_usage`.
    func completed(status: Int, meter: StreamMeter, usage: StreamMeter.Usage?, streamed: Bool) {
        guard status < 400 else { return }
        if let first = meter.firstByte { ttft.record(first / .seconds(1)) }
        if let usage {
            promptTokens.increment(by: Int64(usage.prompt))
            completionTokens.increment(by: Int64(usage.completion))
            if streamed, usage.completion > 1, let first = meter.firstByte {
                let decoding = (ContinuousClock.now - meter.started - first) / .seconds(1)
                tpot.record(decoding / Double(usage.completion - 1))
            }
        }
    }
}
