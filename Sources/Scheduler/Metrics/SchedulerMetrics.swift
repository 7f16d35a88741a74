import Prometheus
import PromText
import Synchronization

/// The scheduler's event metrics (swift-prometheus): recorded as things happen, from any
/// thread — decisions on the node's loop, WAL appends on the storage thread. The page joins
/// them with the observed state (`SchedulerMetricsPage`).
public final class SchedulerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let decisionSeconds: ValueHistogram
    private let walWriteSeconds: ValueHistogram
    private let walFsyncSeconds: ValueHistogram
    private let walBytes: Counter
    private let loadReports: Counter
    private let affinityLookups: Counter
    private let affinityHits: Counter
    private let chunksAsked: Counter
    private let chunksCached: Counter
    /// `decisions_total` by policy and outcome: a small fixed set, made on first use.
    private let decisions = DecisionCounters()
    private let refusals: [Refusal: Counter]

    /// Why a peer's message was refused (`wire_refusals_total{reason}`).
    public enum Refusal: String, Sendable, CaseIterable {
        /// It does not pass validation (`RaftMessageCheck`, or it does not decode into a core message).
        case invalidMessage = "invalid_message"
        /// A Raft message whose `from` is not the node its connection authenticated.
        case wrongSender = "wrong_sender"
        /// Its sender's role may not send it.
        case notPermitted = "not_permitted"
    }

    public init() {
        let fast = [0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05]
        decisionSeconds = registry.makeValueHistogram(
            descriptor: Self.name("decision", "seconds", "Time the leader took to decide one schedule call."), buckets: fast)
        let disk = [0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
        walWriteSeconds = registry.makeValueHistogram(
            descriptor: Self.name("wal_write", "seconds", "Time to write one WAL append (before its fsync)."), buckets: disk)
        walFsyncSeconds = registry.makeValueHistogram(
            descriptor: Self.name("wal_fsync", "seconds", "Time to fsync one WAL append (one group commit)."), buckets: disk)
        walBytes = registry.makeCounter(descriptor: Self.name("wal_written", "bytes_total", "Bytes appended to the WAL."))
        loadReports = registry.makeCounter(descriptor: Self.name("load_reports", "total", "Load reports the leader accepted from agents."))
        affinityLookups = registry.makeCounter(
            descriptor: Self.name("affinity_lookups", "total", "Assignments of requests with a prompt prefix to match."))
        affinityHits = registry.makeCounter(
            descriptor: Self.name("affinity_hits", "total", "Those assigned to an instance believed to hold some of the prefix."))
        chunksAsked = registry.makeCounter(
            descriptor: Self.name("prefix_chunks_requested", "total", "Prefix chunks of assigned requests."))
        chunksCached = registry.makeCounter(
            descriptor: Self.name("prefix_chunks_matched", "total", "Of those, chunks the chosen instance was believed to hold."))
        var refusals: [Refusal: Counter] = [:]
        for reason in Refusal.allCases {
            refusals[reason] = registry.makeCounter(
                descriptor: Self.name("wire_refusals", "total", "Peer messages refused, by reason; each closes its connection or fails its call."),
                labels: [("reason", reason.rawValue)])
        }
        self.refusals = refusals
    }

    func refused(_ reason: Refusal) { refusals[reason]?.increment() }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "junction", subsystem: "scheduler", metricName: metric, unitName: unit, helpText: help)
    }

    /// One schedule call decided: its policy, outcome (`assigned`, `assigned_pair`, `wait`,
    /// `no_instance`), time, and for assignments how much of the prefix the choice holds.
    func decided(policy: String, outcome: String, seconds: Double, prefixChunks: Int = 0, cachedChunks: Int = 0) {
        decisionSeconds.record(seconds)
        decisions.counter(policy: policy, outcome: outcome, in: registry).increment()
        guard prefixChunks > 0 else { return }
        affinityLookups.increment()
        if cachedChunks > 0 { affinityHits.increment() }
        chunksAsked.increment(by: Int64(prefixChunks))
        chunksCached.increment(by: Int64(min(cachedChunks, prefixChunks)))
    }

    func reportAccepted() { loadReports.increment() }

    /// From `FileStorage.onAppend`, on the storage thread.
    func walAppended(bytes: Int, write: Duration, sync: Duration) {
        walBytes.increment(by: Int64(bytes))
        walWriteSeconds.record(write / .seconds(1))
        walFsyncSeconds.record(sync / .seconds(1))
    }

    /// The whole page: the observed state, then the events.
    public func page(_ observation: SchedulerObservation) -> String {
        SchedulerMetricsPage.render(observation).text + registry.emitToString()
    }
}

/// The decision counters by label pair, made once each. Found by a key of the two strings as
/// they are (policy and outcome names are literals): no string is built per decision.
final class DecisionCounters: Sendable {
    private struct Key: Hashable {
        var policy: String
        var outcome: String
    }

    private let made = Mutex<[Key: Counter]>([:])

    func counter(policy: String, outcome: String, in registry: PrometheusCollectorRegistry) -> Counter {
        let key = Key(policy: policy, outcome: outcome)
        return made.withLock { made in
            if let found = made[key] { return found }
            let counter = registry.makeCounter(
                descriptor: SchedulerMetrics.name("decisions", "total", "Schedule calls decided, by policy and outcome."),
                labels: [("policy", policy), ("outcome", outcome)])
            made[key] = counter
            return counter
        }
    }
}
