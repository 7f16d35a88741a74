import AgentCore
import Prometheus
import Synchronization

/// The agent's `/metrics`: how its engine answers (scrape latency and failures, health), what
/// it last observed of the engine's load, and its link to the scheduler (registrations,
/// reports sent and acknowledged). Recorded as things happen; safe from any task.
public final class AgentMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let scrapeSeconds: ValueHistogram
    private let probeSeconds: ValueHistogram
    private let registrations: Counter
    private let reportsSent: Counter
    private let reportsAcknowledged: Counter
    private let schedulerLinkLost: Counter
    private let healthChanges: Counter
    private let running: Gauge
    private let waiting: Gauge
    private let kvUsage: Gauge
    private let promptRate: Gauge
    private let generationRate: Gauge
    private let cacheHitRate: Gauge
    private let kvCapacity: Gauge
    private let metricsFiltered: Gauge
    private let healthGauges: [HealthTracker.Health: Gauge]
    private let failures = Mutex<[String: Counter]>([:])
    private let info = Mutex<Gauge?>(nil)

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "junction", subsystem: "agent", metricName: metric, unitName: unit, helpText: help)
    }

    public init() {
        let latency = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
        scrapeSeconds = registry.makeValueHistogram(
            descriptor: Self.name("scrape", "seconds", "Time to scrape the engine's /metrics (failed scrapes included)."), buckets: latency)
        probeSeconds = registry.makeValueHistogram(
            descriptor: Self.name("health_probe", "seconds", "Time to probe the engine's /health (failed probes included)."), buckets: latency)
        registrations = registry.makeCounter(descriptor: Self.name("registrations", "total", "Times the agent registered its instance with a leader."))
        reportsSent = registry.makeCounter(descriptor: Self.name("reports_sent", "total", "Load reports sent to the leader."))
        reportsAcknowledged = registry.makeCounter(
            descriptor: Self.name("reports_acknowledged", "total", "Load reports the leader acknowledged."))
        schedulerLinkLost = registry.makeCounter(
            descriptor: Self.name("scheduler_link_lost", "total", "Times the report stream to the leader ended and the agent registered again."))
        healthChanges = registry.makeCounter(descriptor: Self.name("engine_health_changes", "total", "Times the engine's health changed."))
        running = registry.makeGauge(descriptor: Self.name("engine_running", "", "Requests the engine runs, as last scraped."))
        waiting = registry.makeGauge(descriptor: Self.name("engine_waiting", "", "Requests queued in the engine, as last scraped."))
        kvUsage = registry.makeGauge(descriptor: Self.name("engine_kv_usage", "ratio", "The engine's KV-cache usage, 0 to 1."))
        promptRate = registry.makeGauge(
            descriptor: Self.name("engine_prompt_tokens_per_second", "", "Prompt tokens per second between the last two scrapes."))
        generationRate = registry.makeGauge(
            descriptor: Self.name("engine_generation_tokens_per_second", "", "Generated tokens per second between the last two scrapes."))
        cacheHitRate = registry.makeGauge(
            descriptor: Self.name("engine_prefix_cache_hit", "ratio", "The engine's prefix-cache hit rate between the last two scrapes (0 when it does not say)."))
        kvCapacity = registry.makeGauge(
            descriptor: Self.name("engine_kv_capacity", "tokens", "Tokens the engine's KV cache holds (0 when it does not say)."))
        var health: [HealthTracker.Health: Gauge] = [:]
        for state in [HealthTracker.Health.unknown, .healthy, .unhealthy, .unreachable] {
            health[state] = registry.makeGauge(
                descriptor: Self.name("engine_health", "", "1 for the engine's health now (unknown, healthy, unhealthy, unreachable), 0 for the others."),
                labels: [("state", "\(state)")])
        }
        health[.unknown]?.set(to: 1)
        healthGauges = health
        metricsFiltered = registry.makeGauge(
            descriptor: Self.name(
                "metrics_filtered", "",
                "1 while the agent asks the engine for only the samples it reads (/metrics?name[]=...); 0: the whole page."))
    }

    func filtering(_ on: Bool) { metricsFiltered.set(to: on ? 1 : 0) }

    /// Once the engine's kind and model are known.
    func discovered(instanceID: String, engineURL: String, family: EngineFamily, model: String) {
        info.withLock { current in
            if let current { registry.unregisterGauge(current) }
            let gauge = registry.makeGauge(
                descriptor: Self.name("engine_info", "", "The engine this agent watches (always 1): its kind and model."),
                labels: [("instance_id", instanceID), ("engine_url", engineURL), ("engine", family.rawValue), ("model", model)])
            gauge.set(to: 1)
            current = gauge
        }
    }

    func probed(seconds: Double) { probeSeconds.record(seconds) }

    /// A scrape ended: its time (nil: none was tried, nothing listens) and, when it failed, why
    /// (`refused`, `unreachable`, `status`, `malformed`).
    func scraped(seconds: Double?, failure: String?) {
        if let seconds { scrapeSeconds.record(seconds) }
        guard let failure else { return }
        failures.withLock { made in
            if made[failure] == nil {
                made[failure] = registry.makeCounter(
                    descriptor: Self.name("scrape_failures", "total", "Scrapes of the engine's /metrics that failed, by reason."),
                    labels: [("reason", failure)])
            }
            made[failure]!.increment()
        }
    }

    func health(_ health: HealthTracker.Health, changed: Bool) {
        if changed { healthChanges.increment() }
        for (state, gauge) in healthGauges { gauge.set(to: state == health ? 1 : 0) }
    }

    func observed(_ load: NormalisedLoad) {
        running.set(to: Double(load.running))
        waiting.set(to: Double(load.waiting))
        kvUsage.set(to: load.kvUsage)
        promptRate.set(to: load.promptTokensPerSecond)
        generationRate.set(to: load.generationTokensPerSecond)
        cacheHitRate.set(to: load.prefixCacheHitRate)
        kvCapacity.set(to: Double(load.kvCapacityTokens))
    }

    func registered() { registrations.increment() }
    func reportSent() { reportsSent.increment() }
    func reportAcknowledged() { reportsAcknowledged.increment() }
    func linkLost() { schedulerLinkLost.increment() }

    public var page: String { registry.emitToString() }
}
