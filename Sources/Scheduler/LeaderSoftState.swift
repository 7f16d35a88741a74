import FlowControl
import Routing
import SchedulerCore

/// What only the leader keeps, outside the log: each instance's latest load report and when it
/// came, the requests it assigned and has not seen finish, the router (its round-robin cursor
/// and tie-break generator), the affinity learned since the last batch was proposed (and the
/// overlay that lets decisions see it before it commits), the models for which some request
/// was told to wait, and the tenants' cluster-wide budgets. A new leader starts this empty; the
/// affinity it decides with is the replicated one.
struct LeaderSoftState: Sendable {
    struct Report: Sendable {
        var load: EngineLoad
        var receivedAt: ContinuousClock.Instant
        var healthy: Bool
        /// The engine's own prefix-cache hit rate, for the metrics page (routing does not read it).
        var prefixCacheHitRate = 0.0
    }

    var router: Router
    /// The replicated policy, set before each decision and tick. The hold's limits follow it at
    /// once, so warming entries and reports use the values in force even when no request that
    /// accepts holds has been decided since the change.
    var policy: PolicyConfiguration {
        get { router.configuration }
        set {
            router.configuration = newValue
            warmup.maxHold = newValue.holdsForWarmingPrefixes ? Double(newValue.prefixHoldMilliseconds) / 1_000 : 0
            warmup.minChunks = newValue.prefixHoldMinChunks
        }
    }
    var reports: [String: Report] = [:]
    var inFlight: [String: Int] = [:]
    /// The instances each request holds a slot on (a pd-split pair holds two). Counting by
    /// request makes `inFlight` exact against the gateway's repeats: a schedule call it sent
    /// again (its first answer was late) supersedes the earlier assignment, and a `Finish` that
    /// comes twice, or for a superseded assignment, changes nothing.
    var slots: [String: Set<String>] = [:]
    /// The same slots by instance, each with when it was taken and the prompt tokens its request
    /// computes there: what `reconcile` compares with the engine's own count.
    var held: [String: [String: Slot]] = [:]
    struct Slot: Sendable {
        var takenAt: ContinuousClock.Instant
        var tokens: Double
    }
    /// Per instance, how many healthy reports in a row showed a shortfall (`reconcile`).
    var shortfallStreak: [String: Int] = [:]
    /// How old a slot must be before the engine is expected to count its request: long enough
    /// for any request to have reached its engine and any `finish` to have arrived.
    var reconcileGrace: Duration = .seconds(2)
    /// Reports in a row that must show a shortfall before slots are given back: one engine
    /// scrape taken between two scheduler steps must not release a running request's slot.
    static let reconcileAfterReports = 2
    /// Per instance, the requests sent there since its latest report: the work that report cannot show.
    var sentSinceReport: [String: SentSinceReport] = [:]
    struct SentSinceReport: Sendable, Equatable {
        var requests = 0
        /// Their uncached prompt tokens.
        var tokens = 0.0
    }
    var pendingAffinity: [AffinityRecord] = []
    /// (instance, last hash) of the chains already in `pendingAffinity`: a chain assigned twice
    /// in one interval is logged once.
    var pendingKeys: Set<PendingKey> = []
    struct PendingKey: Hashable, Sendable {
        var instance: String
        var last: UInt64
    }
    var recentAffinity = AffinityOverlay()
    /// Models whose requests were told to wait, with the most room any of them asked for
    /// (`.some(nil)`: saturation alone, the least), so a capacity signal goes out once an
    /// instance could take one of them.
    var modelsWaiting: [String: RoutingHeadroom?] = [:]
    var lastHeard: [String: ContinuousClock.Instant] = [:]
    /// Per instance, the prompt work sent there and not yet computed, and its prefill rate.
    var prefill: [String: PrefillEstimate] = [:]
    /// Which instance served each session last (session affinity).
    var sessions = SessionTable()
    /// Prefixes being computed for the first time, and the requests to hold back until then.
    var warmup = PrefixWarmup(maxHold: 0, minChunks: 1)
    /// The zero of `PrefillEstimate`'s seconds and of the budgets' time: when this node began
    /// leading (or stopped).
    let epoch = ContinuousClock.now
    /// Tenants' cluster-wide budgets, leased to the gateways.
    var budgets = ClusterBudgets(leasePeriod: Self.leasePeriod)
    /// How long a gateway's lease of a tenant's budget lasts; gateways renew every third of it.
    static let leasePeriod = Duration.seconds(3)

    /// `seed` drives the router's tie-breaks: each leadership draws its own, so a new leader does
    /// not replay its predecessor's choices among equal instances.
    init(policy: PolicyConfiguration, seed: UInt64, reconcileGrace: Duration = .seconds(2)) {
        router = Router(configuration: policy, seed: seed)
        self.reconcileGrace = reconcileGrace
        self.policy = policy
    }

    func view(of record: InstanceRecord, now: ContinuousClock.Instant) -> RoutingInstance {
        var load = reports[record.id]?.load
        if let report = reports[record.id] {
            load?.ageMilliseconds = Int((now - report.receivedAt) / .milliseconds(1))
        }
        var view = RoutingInstance(
            id: record.id, model: record.model, aliases: record.aliases, adapters: record.adapters, state: record.state, role: record.role,
            kvCapacityTokens: record.kvCapacityTokens, load: load, inFlight: inFlight[record.id] ?? 0,
            inFlightSinceReport: sentSinceReport[record.id]?.requests ?? 0)
        view.sentSinceReportTokens = sentSinceReport[record.id]?.tokens ?? 0
        if let estimate = prefill[record.id] {
            view.prefillBacklogTokens = estimate.backlog(at: seconds(now))
            view.prefillTokensPerSecond = estimate.tokensPerSecond
        }
        return view
    }

    func seconds(_ instant: ContinuousClock.Instant) -> Double { (instant - epoch) / .seconds(1) }

    /// A request sent to `instance` that will compute `tokens` of its prompt there.
    mutating func addPrefill(_ instance: String, tokens: Double, at now: ContinuousClock.Instant) {
        let unknown = newPrefillEstimate()
        prefill[instance, default: unknown].assigned(tokens: tokens, at: seconds(now))
    }

    /// An instance's estimate before anything is known of it: the policy's assumed rate and request size.
    private func newPrefillEstimate() -> PrefillEstimate {
        PrefillEstimate(
            tokensPerSecond: router.configuration.prefillTokensPerSecond, meanRequestTokens: router.configuration.queuedRequestTokens)
    }

    /// A new schedule call for `request`: whatever it still held is stale (a gateway releases an
    /// attempt's slots before it asks again), so it goes back.
    mutating func scheduling(_ request: String) {
        warmup.ended(request)
        guard !request.isEmpty, let instances = slots.removeValue(forKey: request) else { return }
        for instance in instances {
            if let slot = held[instance]?.removeValue(forKey: request) { unsend(slot, from: instance) }
            release(instance)
        }
    }

    /// A request sent to `instance`, which will compute `tokens` of its prompt there (0: a
    /// pd-split decode instance, which receives the prompt's KV cache).
    mutating func assigned(
        _ instance: String, chain: [UInt64], request: String = "", tokens: Double = 0, at now: ContinuousClock.Instant = .now
    ) {
        if !request.isEmpty {
            guard slots[request, default: []].insert(instance).inserted else { return }
            held[instance, default: [:]][request] = Slot(takenAt: now, tokens: tokens)
        }
        inFlight[instance, default: 0] += 1
        sentSinceReport[instance, default: SentSinceReport()].requests += 1
        sentSinceReport[instance, default: SentSinceReport()].tokens += tokens
        if let last = chain.last, pendingKeys.insert(PendingKey(instance: instance, last: last)).inserted {
            pendingAffinity.append(AffinityRecord(instanceID: instance, hashes: chain))
            recentAffinity.record(chain, on: instance)
        }
    }

    mutating func finished(_ instance: String, request: String = "") {
        if !request.isEmpty {
            warmup.ended(request)
            guard slots[request]?.remove(instance) != nil else { return }
            if slots[request]?.isEmpty == true { slots[request] = nil }
            if let slot = held[instance]?.removeValue(forKey: request) { unsend(slot, from: instance) }
        }
        release(instance)
    }

    /// A slot given back (its request finished, or was scheduled again) that was taken after the
    /// latest report: no report will ever count it, so it must not count as sent since the
    /// report either (it would weigh on the instance until the next report, and a
    /// conversation's quick next turn would leave).
    private mutating func unsend(_ slot: Slot, from instance: String) {
        guard reports[instance].map({ slot.takenAt > $0.receivedAt }) ?? true, var sent = sentSinceReport[instance], sent.requests > 0
        else { return }
        sent.requests -= 1
        sent.tokens = max(0, sent.tokens - slot.tokens)
        sentSinceReport[instance] = sent
    }

    /// Gives back slots whose `finish` never came (a gateway that died, a message lost): when,
    /// for `reconcileAfterReports` healthy reports in a row, the engine runs and queues fewer
    /// requests than the leader holds slots on it older than `reconcileGrace`, the oldest of
    /// those slots are released, down to the engine's count. It only ever releases: an engine
    /// busier than the leader knows (clients that bypass Junction) changes nothing, and a
    /// request whose slot was given back and whose `finish` comes later changes nothing either.
    /// Returns how many slots it released.
    @discardableResult
    mutating func reconcile(_ instance: String, engineCount: Int, now: ContinuousClock.Instant) -> Int {
        let old = (held[instance] ?? [:]).filter { now - $0.value.takenAt >= reconcileGrace }
        let excess = old.count - engineCount
        guard excess > 0 else {
            shortfallStreak[instance] = nil
            return 0
        }
        shortfallStreak[instance, default: 0] += 1
        guard shortfallStreak[instance, default: 0] >= Self.reconcileAfterReports else { return 0 }
        shortfallStreak[instance] = nil
        let oldest = old.sorted { ($0.value.takenAt, $0.key) < ($1.value.takenAt, $1.key) }.prefix(excess)
        for (request, _) in oldest { finished(instance, request: request) }
        return excess
    }

    private mutating func release(_ instance: String) {
        if let count = inFlight[instance], count > 0 { inFlight[instance] = count - 1 }
    }

    /// `readingAge`: how old the engine reading was when the report was sent (its scrape's age).
    mutating func report(
        _ instance: String, load: EngineLoad, healthy: Bool, prefixCacheHitRate: Double = 0, readingAge: Duration = .zero,
        at now: ContinuousClock.Instant
    ) {
        reports[instance] = Report(load: load, receivedAt: now, healthy: healthy, prefixCacheHitRate: prefixCacheHitRate)
        sentSinceReport[instance] = SentSinceReport()
        if healthy {
            let unknown = newPrefillEstimate()
            prefill[instance, default: unknown].reported(
                waiting: load.waiting, computedTokensPerSecond: load.promptTokensPerSecond * (1 - prefixCacheHitRate),
                memoryBound: load.kvUsage > router.configuration.kvPressure, at: seconds(now))
        }
        lastHeard[instance] = now
        if healthy { warmup.reported(instance, waiting: load.waiting, observedAt: seconds(now - readingAge), at: seconds(now)) }
        // An unhealthy engine reports no load: its count says nothing about its requests.
        if healthy { reconcile(instance, engineCount: load.running + load.waiting, now: now) }
    }

    /// The policies that route by prefix affinity hold a request whose prefix its instance is
    /// computing for a request not yet admitted there (`PrefixWarmup`); nil: send it now.
    /// `acceptsHold`: the gateway asking understands a hold (one from before holds existed would
    /// read it as a broken answer and fall back).
    mutating func warmupHold(
        _ request: String, on instance: String, chain: [UInt64], cachedChunks: Int, acceptsHold: Bool, at now: ContinuousClock.Instant
    ) -> (retryAfter: Double, warmingChunks: Int)? {
        let policy = router.configuration
        guard acceptsHold, policy.holdsForWarmingPrefixes else { return nil }
        return warmup.hold(
            request, on: instance, chain: chain, cachedChunks: cachedChunks, secondsPerChunk: recomputeBound(on: instance),
            at: seconds(now))
    }

    /// The instance's prefill time for one chunk, as learned from its reports (the policy's
    /// assumed rate until then): no hold lasts longer than computing the shared part again. Not
    /// while its KV cache is under pressure (by its report): a request there waits for blocks to
    /// free, not for a step to end, so a follower released early would most likely join the first
    /// request's step and compute the prefix again, having waited for nothing (measured:
    /// `pressure-open`, Docs/benchmarks.md); it waits for the report that shows the admission.
    private func recomputeBound(on instance: String) -> Double? {
        let policy = router.configuration
        if let load = reports[instance]?.load, load.kvUsage > policy.kvPressure { return nil }
        let tokensPerSecond = prefill[instance]?.tokensPerSecond ?? policy.prefillTokensPerSecond
        return policy.chunkTokens / max(1, tokensPerSecond)
    }

    /// A request sent to `instance` (`view`: as the decision saw it) that computes `chain` past
    /// `cachedChunks` there: requests sharing that part wait until it is admitted.
    mutating func warming(_ request: String, on view: RoutingInstance, chain: [UInt64], cachedChunks: Int, at now: ContinuousClock.Instant) {
        let policy = router.configuration
        guard policy.holdsForWarmingPrefixes else { return }
        warmup.assigned(to: view.id, at: seconds(now))
        // Only while the engine keeps no queue (by its fresh report): with requests waiting there,
        // no report is likely to show this one admitted, and its followers would be held for
        // all of `prefix_hold_ms`, longer than the recomputation it would save them. Nor while
        // its KV cache is under pressure: the request waits for blocks, and the prefix's blocks
        // may be evicted before a held follower comes (measured: in `pressure-open` holds lowered
        // the hit rate and raised the mean TTFT in three runs of three, Docs/benchmarks.md).
        guard let load = view.load, load.ageMilliseconds <= policy.staleReportMilliseconds, load.waiting == 0,
            load.kvUsage <= policy.kvPressure
        else { return }
        // The leader's own count, not what was sent since the report: a report can carry a
        // reading older than requests sent before it arrived.
        let idle = load.running == 0 && view.inFlight == 0
        warmup.sent(request, to: view.id, chain: chain, cachedChunks: cachedChunks, idle: idle, at: seconds(now))
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

extension RoutingHeadroom {
    /// The room that lets through a request asking for `self` or for `other` (nil: saturation alone).
    static func leastOf(_ a: RoutingHeadroom?, _ b: RoutingHeadroom?) -> RoutingHeadroom? {
        guard let a, let b else { return nil }
        return RoutingHeadroom(
            maxWaiting: max(a.maxWaiting, b.maxWaiting), maxKVUsage: max(a.maxKVUsage, b.maxKVUsage),
            maxRunning: a.maxRunning == 0 || b.maxRunning == 0 ? 0 : max(a.maxRunning, b.maxRunning),
            maxPrefillSeconds: a.maxPrefillSeconds == 0 || b.maxPrefillSeconds == 0 ? 0 : max(a.maxPrefillSeconds, b.maxPrefillSeconds))
    }
}
