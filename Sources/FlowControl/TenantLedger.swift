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

/// What a tenant's limits say to a request under the leader's leases.
public enum LeasedAdmission: Sendable, Equatable {
    /// Charged to the lease.
    case admitted
    /// Charged to this gateway's own buckets (its share): no live lease, and the leader was asked.
    case admittedByShare
    case refused(LimitRefusal, retryAfter: Duration)
    /// The lease this gateway holds cannot say yes: ask the leader for more, then decide again
    /// without asking.
    case askLeader
}

/// One tenant's use of its limits: requests it has in flight, and its per-minute request and
/// token budgets. A request is charged when it is admitted (one request, its estimated tokens)
/// and settled when it ends (its real tokens, from the engine's usage; nothing for a request that
/// never reached an engine). Pure.
///
/// The budgets are this gateway's own buckets at its share of each limit (`admit`), or, when the
/// scheduler leader keeps the cluster-wide budget (`ClusterBudgets`), the lease the leader
/// granted (`admitLeased`); spending under a lease is mirrored into the own buckets, so a gateway
/// that loses its leader does not start its share afresh with what it had just spent.
public struct TenantLedger: Sendable, Equatable {
    public private(set) var policy: TenantPolicy
    public private(set) var inFlight = 0
    private var requests: TokenBucket?
    private var tokens: TokenBucket?
    /// Each limit is this fraction of the tenant's own (1: this gateway enforces it alone).
    public private(set) var share: Double = 1
    /// The leader's grant, if one was asked for.
    public private(set) var lease: TenantLease?
    /// What arrived since the last ask: what the next ask expects to need.
    private var demand = Demand()
    /// The last ask gave everything back (the tenant was idle): its grant makes no lease.
    private var releasing = false

    struct Demand: Sendable, Equatable {
        var requests = 0.0
        var tokens = 0.0
        /// Requests the lease could not admit (they asked the leader, or were refused): the
        /// allowance wanted is this many more than run now.
        var unadmitted = 0
        var isEmpty: Bool { requests == 0 && tokens == 0 && unadmitted == 0 }
    }
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
    /// `toLease`: it was charged to the lease (`admitLeased` said `admitted`), so it settles there
    /// and the lease gives the difference back to the leader at its next renewal; otherwise it was
    /// charged to this gateway's own buckets and settles in them.
    public mutating func settle(estimatedTokens: Int, usedTokens: Int?, reachedEngine: Bool, toLease: Bool = false, now: Duration) {
        inFlight = max(0, inFlight - 1)
        let requestBack: Double = reachedEngine ? 0 : 1
        let tokensBack = usedTokens.map { Double(estimatedTokens) - Double($0) } ?? 0
        if toLease {
            lease?.requests += policy.requestsPerMinute == nil ? 0 : requestBack
            lease?.tokens += policy.tokensPerMinute == nil ? 0 : tokensBack
        } else {
            requests?.adjust(by: requestBack, now: now)
            tokens?.adjust(by: tokensBack, now: now)
        }
    }

    // MARK: - Under the leader's leases

    /// Admits a request under the lease: charged to it when it covers the request; otherwise,
    /// when `mayAsk` and the leader did not say to wait, the leader is to be asked first. With
    /// no live lease and no asking (the leader did not answer), this gateway's share decides.
    public mutating func admitLeased(estimatedTokens: Int, now: Duration, mayAsk: Bool) -> LeasedAdmission {
        guard policy.hasLimits else {
            inFlight += 1
            return .admitted
        }
        if mayAsk {
            demand.requests += 1
            demand.tokens += Double(estimatedTokens)
        }
        guard var held = lease, now < held.expires else {
            if mayAsk {
                demand.unadmitted += 1
                return .askLeader
            }
            if let (refusal, wait) = admit(estimatedTokens: estimatedTokens, now: now) { return .refused(refusal, retryAfter: wait) }
            return .admittedByShare
        }
        if let refusal = held.shortfall(policy: policy, inFlight: inFlight, estimatedTokens: estimatedTokens) {
            if mayAsk { demand.unadmitted += 1 }
            if mayAsk, now >= held.askAfter { return .askLeader }
            return .refused(refusal, retryAfter: max(.seconds(1), held.askAfter - now))
        }
        if policy.requestsPerMinute != nil { held.requests -= 1 }
        if policy.tokensPerMinute != nil { held.tokens -= Double(estimatedTokens) }
        lease = held
        requests?.drain(1, now: now)
        tokens?.drain(Double(estimatedTokens), now: now)
        inFlight += 1
        return .admitted
    }

    /// The ask for the next lease, giving back what the current one holds unspent (so the
    /// leader may grant it elsewhere); nil when the tenant has no limits, or is idle and holds
    /// nothing. `need`: the estimated tokens of a request waiting for this ask. An idle tenant's
    /// ask releases its lease.
    public mutating func leaseAsk(need: Int?, now: Duration) -> ClusterBudgets.Ask? {
        guard policy.hasLimits else { return nil }
        let idle = need == nil && demand.isEmpty && inFlight == 0
        if idle, lease == nil { return nil }
        var ask = ClusterBudgets.Ask(tenant: policy.name, limits: policy.limits)
        ask.unspentRequests = lease?.requests ?? 0
        ask.unspentTokens = lease?.tokens ?? 0
        lease?.requests = 0
        lease?.tokens = 0
        ask.inFlight = inFlight
        if !idle {
            // Twice what came in since the last ask: renewals come every third of a lease, and
            // a grant must last until the next one answers.
            if let limit = policy.maxConcurrent { ask.wantConcurrent = min(limit, inFlight + max(1, demand.unadmitted)) }
            if policy.requestsPerMinute != nil {
                ask.wantRequests = 2 * demand.requests + (need == nil ? 0 : 1)
                ask.needRequests = need == nil ? 0 : 1
            }
            if policy.tokensPerMinute != nil {
                ask.wantTokens = 2 * demand.tokens + Double(need ?? 0)
                ask.needTokens = Double(need ?? 0)
            }
        }
        demand = Demand()
        releasing = idle
        if idle { lease = nil }
        return ask
    }

    /// The leader's answer to the last ask: the lease until `expires` (counted from when it was
    /// asked, so it ends no later than the leader's own record of it).
    public mutating func applyGrant(_ grant: ClusterBudgets.Grant, expires: Duration, now: Duration) {
        guard !releasing else {
            releasing = false
            return
        }
        var held = lease ?? TenantLease(expires: expires)
        held.concurrent = grant.concurrent
        held.requests += grant.requests
        held.tokens += grant.tokens
        held.expires = expires
        held.askAfter = grant.retryAfter.map { now + $0 } ?? now
        lease = held
    }

    /// The ask went unanswered. What it gave back is treated as given back (the leader may have
    /// taken it): never spent twice. The allowance lasts until it expires.
    public mutating func leaseFailed() {
        releasing = false
    }

    /// Sets this gateway's share of the tenant's limits (a cluster-wide budget split between
    /// gateways). The buckets keep their levels, bounded by the new capacities.
    public mutating func setShare(_ share: Double, now: Duration) {
        self.share = min(1, max(0.000_001, share))
        if let limit = policy.requestsPerMinute { requests?.resize(perMinute: Double(limit) * self.share, now: now) }
        if let limit = policy.tokensPerMinute { tokens?.resize(perMinute: Double(limit) * self.share, now: now) }
    }

    /// What is left of this gateway's own per-minute budgets now (nil: no such limit).
    public func remaining(now: Duration) -> (requests: Double?, tokens: Double?) {
        var r = requests
        var t = tokens
        r?.adjust(by: 0, now: now)
        t?.adjust(by: 0, now: now)
        return (r?.level, t?.level)
    }
}
