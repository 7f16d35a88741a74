/// Why a tenant's request was refused before it could wait or run.
public enum LimitRefusal: Sendable, Equatable {
    case concurrency(limit: Int)
    case requestsPerMinute(limit: Int)
    case tokensPerMinute(limit: Int)

    public var limit: Int {
        switch self {
        case .concurrency(let limit), .requestsPerMinute(let limit), .tokensPerMinute(let limit): limit
        }
    }

    /// The label in metrics and the word in the error: `concurrency`, `requests`, `tokens`.
    public var kind: String {
        switch self {
        case .concurrency: "concurrency"
        case .requestsPerMinute: "requests"
        case .tokensPerMinute: "tokens"
        }
    }
}

/// One tenant's use of its limits: requests it has in flight, and its per-minute request and
/// token budgets. A request is charged when it is admitted (one request, its estimated tokens)
/// and settled when it ends (its real tokens, from the engine's usage; nothing for a request that
/// never reached an engine). Pure.
public struct TenantLedger: Sendable, Equatable {
    public private(set) var policy: TenantPolicy
    public private(set) var inFlight = 0
    private var requests: TokenBucket?
    private var tokens: TokenBucket?
    /// Each limit is this fraction of the tenant's own (1: this gateway enforces it alone).
    public private(set) var share: Double = 1

    public init(policy: TenantPolicy, now: Duration) {
        self.policy = policy
        requests = policy.requestsPerMinute.map { TokenBucket(perMinute: Double($0), now: now) }
        tokens = policy.tokensPerMinute.map { TokenBucket(perMinute: Double($0), now: now) }
    }

    /// The concurrency this gateway allows: its share of the limit, at least one.
    public var concurrencyAllowed: Int? {
        // The epsilon keeps a share like 1/3 of 9 from rounding down to 2.
        policy.maxConcurrent.map { max(1, Int((Double($0) * share + 1e-9).rounded(.down))) }
    }

    /// Admits a request estimated at `tokens` tokens, charging it, or says which limit refuses it
    /// and when to try again.
    public mutating func admit(estimatedTokens: Int, now: Duration) -> (LimitRefusal, retryAfter: Duration)? {
        if let allowed = concurrencyAllowed, inFlight >= allowed {
            // Nothing says when one ends; a second is the usual wait for a slot.
            return (.concurrency(limit: policy.maxConcurrent!), .seconds(1))
        }
        if let limit = policy.requestsPerMinute, var bucket = requests {
            if let wait = bucket.take(1, now: now) { return (.requestsPerMinute(limit: limit), wait) }
            requests = bucket
        }
        if let limit = policy.tokensPerMinute, var bucket = tokens {
            if let wait = bucket.take(Double(estimatedTokens), now: now) {
                // Give back the request taken above: this one is not admitted.
                requests?.adjust(by: 1, now: now)
                return (.tokensPerMinute(limit: limit), wait)
            }
            tokens = bucket
        }
        inFlight += 1
        return nil
    }

    /// A request admitted with `estimatedTokens` ended, having used `usedTokens` (nil: unknown,
    /// the estimate stands). One that never reached an engine (refused by the queue, shed, timed
    /// out waiting, given up by its client) gives its request back too: the tenant is not charged
    /// for the gateway's lack of room.
    public mutating func settle(estimatedTokens: Int, usedTokens: Int?, reachedEngine: Bool, now: Duration) {
        inFlight = max(0, inFlight - 1)
        if !reachedEngine { requests?.adjust(by: 1, now: now) }
        if let used = usedTokens { tokens?.adjust(by: Double(estimatedTokens - used), now: now) }
    }

    /// Sets this gateway's share of the tenant's limits (a cluster-wide budget split between
    /// gateways). The buckets keep their levels, bounded by the new capacities.
    public mutating func setShare(_ share: Double, now: Duration) {
        self.share = min(1, max(0.000_001, share))
        if let limit = policy.requestsPerMinute { requests?.resize(perMinute: Double(limit) * self.share, now: now) }
        if let limit = policy.tokensPerMinute { tokens?.resize(perMinute: Double(limit) * self.share, now: now) }
    }

    /// What is left of the per-minute budgets now (nil: no such limit), for `ctl tenants`.
    public func remaining(now: Duration) -> (requests: Double?, tokens: Double?) {
        var r = requests
        var t = tokens
        r?.adjust(by: 0, now: now)
        t?.adjust(by: 0, now: now)
        return (r?.level, t?.level)
    }
}
