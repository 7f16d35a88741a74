import Routing
import SchedulerCore

/// What only the leader keeps, outside the log: each instance's latest load report and when it
/// came, the requests it assigned and has not seen finish, the router (its round-robin cursor
/// and tie-break generator), the affinity learned since the last batch was proposed (and the
/// overlay that lets decisions see it before it commits), and the models for which some request
/// was told to wait. A new leader starts this empty; the affinity it decides with is the
/// replicated one.
struct LeaderSoftState: Sendable {
    struct Report: Sendable {
        var load: EngineLoad
        var receivedAt: ContinuousClock.Instant
        var healthy: Bool
    }

    var router: Router
    var reports: [String: Report] = [:]
    var inFlight: [String: Int] = [:]
    /// The instances each request holds a slot on (a pd-split pair holds two). Counting by
    /// request makes `inFlight` exact against the gateway's repeats: a schedule call it sent
    /// again (its first answer was late) supersedes the earlier assignment, and a `Finish` that
    /// comes twice, or for a superseded assignment, changes nothing.
    var slots: [String: Set<String>] = [:]
    var sentSinceReport: [String: Int] = [:]
    var pendingAffinity: [AffinityRecord] = []
    /// (instance, last hash) of the chains already in `pendingAffinity`: a chain assigned twice
    /// in one interval is logged once.
    var pendingKeys: Set<PendingKey> = []
    struct PendingKey: Hashable, Sendable {
        var instance: String
        var last: UInt64
    }
    var recentAffinity = AffinityOverlay()
    var modelsWaiting: Set<String> = []
    var lastHeard: [String: ContinuousClock.Instant] = [:]

    /// `seed` drives the router's tie-breaks: each leadership draws its own, so a new leader does
    /// not replay its predecessor's choices among equal instances.
    init(policy: PolicyConfiguration, seed: UInt64) { router = Router(configuration: policy, seed: seed) }

    func view(of record: InstanceRecord, now: ContinuousClock.Instant) -> RoutingInstance {
        var load = reports[record.id]?.load
        if let report = reports[record.id] {
            load?.ageMilliseconds = Int((now - report.receivedAt) / .milliseconds(1))
        }
        return RoutingInstance(
            id: record.id, model: record.model, state: record.state, role: record.role,
            kvCapacityTokens: record.kvCapacityTokens, load: load, inFlight: inFlight[record.id] ?? 0,
            inFlightSinceReport: sentSinceReport[record.id] ?? 0)
    }

    /// A new schedule call for `request`: whatever it still held is stale (a gateway releases an
    /// attempt's slots before it asks again), so it goes back.
    mutating func scheduling(_ request: String) {
        guard !request.isEmpty, let held = slots.removeValue(forKey: request) else { return }
        for instance in held { release(instance) }
    }

    mutating func assigned(_ instance: String, chain: [UInt64], request: String = "") {
        if !request.isEmpty {
            guard slots[request, default: []].insert(instance).inserted else { return }
        }
        inFlight[instance, default: 0] += 1
        sentSinceReport[instance, default: 0] += 1
        if let last = chain.last, pendingKeys.insert(PendingKey(instance: instance, last: last)).inserted {
            pendingAffinity.append(AffinityRecord(instanceID: instance, hashes: chain))
            recentAffinity.record(chain, on: instance)
        }
    }

    mutating func finished(_ instance: String, request: String = "") {
        if !request.isEmpty {
            guard slots[request]?.remove(instance) != nil else { return }
            if slots[request]?.isEmpty == true { slots[request] = nil }
        }
        release(instance)
    }

    private mutating func release(_ instance: String) {
        if let count = inFlight[instance], count > 0 { inFlight[instance] = count - 1 }
    }

    mutating func report(_ instance: String, load: EngineLoad, healthy: Bool, at now: ContinuousClock.Instant) {
        reports[instance] = Report(load: load, receivedAt: now, healthy: healthy)
        sentSinceReport[instance] = 0
        lastHeard[instance] = now
    }

    mutating func takeAffinityBatch() -> [AffinityRecord] {
        defer {
            pendingAffinity = []
            pendingKeys = []
            recentAffinity.rotate()
        }
        return pendingAffinity
    }
}

