/// The scheduler leader's side of cluster-wide tenant limits: each limited tenant's budget, leased
/// out in slices to the gateways, so that N gateways together allow a tenant its limit and not N
/// times it. Soft state (nothing is in the Raft log): a new leader starts afresh. Pure: time is
/// a value, and every call returns what to answer.
///
/// - **Rates** (requests and tokens per minute): one bucket per limit, as a gateway's own. A
///   grant is taken out of the bucket at once; what a gateway did not spend comes back with its
///   next renewal, and what it never renews is lost to the bucket (never spent twice). Holders
///   that want budget at the same time split what is there in proportion to what each expects to
///   need, and each gets at least what its waiting request needs when the bucket holds that much.
/// - **Concurrency**: each gateway holds an allowance (how many of the tenant's requests it may
///   run). An allowance is the holder's max-min fair share of the limit by what each holder
///   wants, but never more than the others leave free (their allowances, or their running
///   requests when larger): a holder over its share shrinks to it at its next renewal, and the
///   others grow into what it frees. The allowances never sum above the limit.
/// - **A new leader** starts afresh: its buckets full, as a gateway's own start, so what was
///   spent in the minute before the election is forgotten and a tenant may get up to one more
///   minute's burst across a failover. (Starting them empty would refuse every tenant's burst for
///   a minute after each election and after the trio starts.) Gateways renew every third of a
///   lease, giving back what they held of the old leader's grants and asking for what they
///   want, so allowances are rebuilt within that. A gateway that cannot reach the new leader
///   spends its old lease until it expires, then its share (`TenantLedger`): until then the
///   limit may be exceeded by what it holds. That is the price of keeping budgets out of the
///   Raft log, where every request's spending would cost a commit.
public struct ClusterBudgets: Sendable {
    public struct Limits: Sendable, Equatable {
        public var maxConcurrent: Int?
        public var requestsPerMinute: Int?
        public var tokensPerMinute: Int?

        public init(maxConcurrent: Int? = nil, requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil) {
            self.maxConcurrent = maxConcurrent
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
        }

        public var isEmpty: Bool { maxConcurrent == nil && requestsPerMinute == nil && tokensPerMinute == nil }
    }

    /// One gateway's ask for one tenant (the wire's `TenantLeaseAsk`).
    public struct Ask: Sendable, Equatable {
        public var tenant: String
        public var limits: Limits
        /// Given back from the last lease (negative: a debt).
        public var unspentRequests = 0.0
        public var unspentTokens = 0.0
        public var inFlight = 0
        public var wantConcurrent = 0
        public var wantRequests = 0.0
        public var wantTokens = 0.0
        /// The least worth granting: a waiting request's one request and tokens.
        public var needRequests = 0.0
        public var needTokens = 0.0

        public init(tenant: String, limits: Limits) {
            self.tenant = tenant
            self.limits = limits
        }
    }

    public struct Grant: Sendable, Equatable {
        public var tenant: String
        public var concurrent: Int
        public var requests: Double
        public var tokens: Double
        /// When the grant does not cover the ask's need: how long until it could.
        public var retryAfter: Duration?

        public init(tenant: String, concurrent: Int, requests: Double, tokens: Double, retryAfter: Duration? = nil) {
            self.tenant = tenant
            self.concurrent = concurrent
            self.requests = requests
            self.tokens = tokens
            self.retryAfter = retryAfter
        }
    }

    /// One tenant's budget as `junction ctl tenants` shows it.
    public struct Usage: Sendable, Equatable {
        public var tenant: String
        public var limits: Limits
        public var requestsAvailable: Double?
        public var tokensAvailable: Double?
        public var concurrentLeased: Int
        public var inFlight: Int
        public var holders: Int
        public var requestsUsed: Double
        public var tokensUsed: Double
    }

    private struct Holding: Sendable {
        var concurrent = 0
        /// The allowance before the last grant: the holder may still admit up to it until the
        /// grant's answer reaches it, which its next ask proves (a gateway's calls go one at a time).
        var previousConcurrent = 0
        var inFlight = 0
        var wantConcurrent = 0
        var wantRequests = 0.0
        var wantTokens = 0.0
        /// The last grant, not yet accounted for: what comes back unspent of it was not spent.
        var outstandingRequests = 0.0
        var outstandingTokens = 0.0
        var expires: Duration
    }

    private struct Budget: Sendable {
        var limits: Limits
        var requests: TokenBucket?
        var tokens: TokenBucket?
        var holdings: [UInt64: Holding] = [:]
        var requestsUsed = 0.0
        var tokensUsed = 0.0
        /// Turns the remainder of a fair split among holders from one grant to the next.
        var rotation = 0

        init(limits: Limits, now: Duration) {
            self.limits = limits
            requests = limits.requestsPerMinute.map { TokenBucket(perMinute: Double($0), now: now) }
            tokens = limits.tokensPerMinute.map { TokenBucket(perMinute: Double($0), now: now) }
        }

        /// A limit changed in a gateway's config: a bucket keeps its level (within the new
        /// capacity). A limit an ask does not state stays as it was: during a config rollout,
        /// gateways with and without it must not drop and refill the bucket in turn.
        mutating func follow(_ stated: Limits, now: Duration) {
            let new = Limits(
                maxConcurrent: stated.maxConcurrent ?? limits.maxConcurrent, requestsPerMinute: stated.requestsPerMinute ?? limits.requestsPerMinute,
                tokensPerMinute: stated.tokensPerMinute ?? limits.tokensPerMinute)
            guard new != limits else { return }
            requests = Self.resized(requests, new.requestsPerMinute, now: now)
            tokens = Self.resized(tokens, new.tokensPerMinute, now: now)
            limits = new
        }

        private static func resized(_ bucket: TokenBucket?, _ limit: Int?, now: Duration) -> TokenBucket? {
            guard let limit else { return nil }
            guard var bucket else { return TokenBucket(perMinute: Double(limit), now: now) }
            bucket.resize(perMinute: Double(limit), now: now)
            return bucket
        }
    }

    /// How long a grant lives; gateways renew well within it.
    public let leasePeriod: Duration
    /// Bounds on what any gateway can make the leader keep.
    public let maxTenants: Int
    public let maxHolders: Int
    private var budgets: [String: Budget] = [:]
    /// Every gateway that asked within a lease period (its heartbeat too), until when.
    private var holders: [UInt64: Duration] = [:]

    public init(leasePeriod: Duration, maxTenants: Int = 4_096, maxHolders: Int = 1_024) {
        self.leasePeriod = leasePeriod
        self.maxTenants = maxTenants
        self.maxHolders = maxHolders
    }

    /// Gateways that asked within a lease period: the divisor of each one's share in fallback.
    public func gateways(now: Duration) -> Int { holders.values.count { $0 > now } }

    public enum Refusal: Error, Equatable {
        /// More holders or tenants than the bounds: a gateway's bug or an attack, not a tenant's use.
        case tooMany(String)
    }

    /// A gateway (`holder`) renews its leases: takes back what it did not spend and grants it
    /// what it may spend until `now + leasePeriod`. One grant per ask, in order.
    public mutating func lease(holder: UInt64, asks: [Ask], now: Duration) throws(Refusal) -> [Grant] {
        expire(now)
        if holders[holder] == nil, holders.count >= maxHolders {
            throw .tooMany("\(holders.count) gateways hold leases, the most a leader keeps")
        }
        let newTenants = Set(asks.map(\.tenant)).subtracting(budgets.keys).count
        if budgets.count + newTenants > maxTenants {
            throw .tooMany("\(budgets.count + newTenants) tenants, more than the \(maxTenants) a leader keeps")
        }
        holders[holder] = now + leasePeriod
        return asks.map { lease(holder, $0, now: now) }
    }

    private mutating func lease(_ holder: UInt64, _ ask: Ask, now: Duration) -> Grant {
        var budget = budgets[ask.tenant] ?? Budget(limits: ask.limits, now: now)
        budget.follow(ask.limits, now: now)
        var holding = budget.holdings[holder] ?? Holding(expires: now)
        // What came back: into the buckets, and what of the last grant did not come back was
        // spent. A gateway gives back at most what a bucket holds, and owes at most as much.
        let requestsBack = Self.bounded(ask.unspentRequests, by: budget.requests)
        let tokensBack = Self.bounded(ask.unspentTokens, by: budget.tokens)
        budget.requests?.adjust(by: requestsBack, now: now)
        budget.tokens?.adjust(by: tokensBack, now: now)
        budget.requestsUsed += holding.outstandingRequests - requestsBack
        budget.tokensUsed += holding.outstandingTokens - tokensBack
        holding.inFlight = max(0, ask.inFlight)
        holding.wantConcurrent = max(0, ask.wantConcurrent)
        holding.wantRequests = max(0, ask.wantRequests)
        holding.wantTokens = max(0, ask.wantTokens)
        holding.expires = now + leasePeriod
        budget.holdings[holder] = holding

        var retry: Duration?
        func needsRetry(after wait: Duration) { retry = max(retry ?? .zero, wait) }

        var concurrent = 0
        if let limit = budget.limits.maxConcurrent {
            let others = budget.holdings.filter { $0.key != holder }.values.reduce(0) {
                $0 + max($1.concurrent, $1.previousConcurrent, $1.inFlight)
            }
            let free = max(0, limit - others)
            let wants = budget.holdings.mapValues { $0.wantConcurrent }
            concurrent = min(Self.fairShares(of: limit, wants: wants, rotation: budget.rotation)[holder] ?? 0, free)
            budget.rotation &+= 1
            if concurrent <= holding.inFlight, holding.wantConcurrent > holding.inFlight { needsRetry(after: .seconds(1)) }
        }
        budget.holdings[holder]!.previousConcurrent = holding.concurrent
        budget.holdings[holder]!.concurrent = concurrent

        let requests = Self.grant(
            from: &budget.requests, want: holding.wantRequests, need: ask.needRequests, whole: true,
            wants: budget.holdings.values.reduce(0) { $0 + $1.wantRequests }, now: now, retry: needsRetry)
        let tokens = Self.grant(
            from: &budget.tokens, want: holding.wantTokens, need: ask.needTokens, whole: false,
            wants: budget.holdings.values.reduce(0) { $0 + $1.wantTokens }, now: now, retry: needsRetry)
        budget.holdings[holder]!.outstandingRequests = requests
        budget.holdings[holder]!.outstandingTokens = tokens
        budgets[ask.tenant] = budget
        return Grant(tenant: ask.tenant, concurrent: concurrent, requests: requests, tokens: tokens, retryAfter: retry)
    }

    /// A slice of one rate bucket: the holder's part of what is there, in proportion to its want
    /// among all holders' wants, at most its want, and at least its need while the bucket holds
    /// the need (a need above the bucket's capacity gets a full bucket; the request spends more,
    /// and its gateway gives back the debt, which the bucket bounds). Unlimited (no bucket): nothing to grant. `whole`: requests are
    /// granted in whole numbers, since a fraction of one admits nothing where it is held.
    private static func grant(
        from bucket: inout TokenBucket?, want: Double, need: Double, whole: Bool, wants: Double, now: Duration, retry: (Duration) -> Void
    ) -> Double {
        guard var held = bucket else { return 0 }
        defer { bucket = held }
        let level = held.available(now: now)
        let needed = min(need, held.capacity)
        if needed > 0, level < needed {
            retry(held.wait(until: needed))
            return 0
        }
        let part = wants > 0 ? max(0, level) * want / wants : 0
        let slice = min(want, part, max(0, level))
        let amount = max(whole ? slice.rounded(.down) : slice, needed)
        held.adjust(by: -amount, now: now)
        return amount
    }

    private static func bounded(_ amount: Double, by bucket: TokenBucket?) -> Double {
        guard let bucket, amount.isFinite else { return 0 }
        return min(bucket.capacity, max(-bucket.capacity, amount))
    }

    /// Max-min fair shares of `limit` between holders by what each wants: everyone gets an equal
    /// part, those who want less keep only what they want, and what they leave is shared again
    /// among the rest. Integer parts; a remainder goes to holders in the order of their ids,
    /// starting `rotation` places in (so no holder is always last), not in a dictionary's order.
    public static func fairShares(of limit: Int, wants: [UInt64: Int], rotation: Int = 0) -> [UInt64: Int] {
        var shares: [UInt64: Int] = [:]
        var left = limit
        var open = wants.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        while left > 0, !open.isEmpty {
            let part = left / open.count
            let satisfied = open.filter { $0.value - (shares[$0.key] ?? 0) <= part }
            if satisfied.isEmpty {
                let extra = left - part * open.count
                let start = Int(UInt(bitPattern: rotation) % UInt(open.count))
                for (index, holder) in open.enumerated() {
                    let place = (index - start + open.count) % open.count
                    let amount = part + (place < extra ? 1 : 0)
                    if amount > 0 { shares[holder.key, default: 0] += amount }
                }
                left = 0
                break
            }
            for holder in satisfied {
                let rest = holder.value - (shares[holder.key] ?? 0)
                shares[holder.key, default: 0] += rest
                left -= rest
            }
            open.removeAll { holder in satisfied.contains { $0.key == holder.key } }
        }
        return shares
    }

    /// Drops what has expired: a holding's outstanding grant counts as spent (it was never given
    /// back), and its allowance frees. A budget nobody holds whose buckets are full again says
    /// nothing a new one would not: it goes, so the bound on tenants counts live ones.
    private mutating func expire(_ now: Duration) {
        holders = holders.filter { $0.value > now }
        for (tenant, budget) in budgets {
            if budget.holdings.isEmpty {
                let full = [budget.requests, budget.tokens].allSatisfy { bucket in
                    guard var bucket else { return true }
                    return bucket.available(now: now) >= bucket.capacity
                }
                if full { budgets[tenant] = nil }
                continue
            }
            guard budget.holdings.values.contains(where: { $0.expires <= now }) else { continue }
            var kept = budget
            for (holder, holding) in budget.holdings where holding.expires <= now {
                kept.requestsUsed += holding.outstandingRequests
                kept.tokensUsed += holding.outstandingTokens
                kept.holdings[holder] = nil
            }
            budgets[tenant] = kept
        }
    }

    /// Every tenant's budget and use, by name.
    public mutating func usage(now: Duration) -> [Usage] {
        expire(now)
        return budgets.keys.sorted().map { name in
            var budget = budgets[name]!
            let usage = Usage(
                tenant: name, limits: budget.limits, requestsAvailable: budget.requests?.available(now: now),
                tokensAvailable: budget.tokens?.available(now: now),
                concurrentLeased: budget.holdings.values.reduce(0) { $0 + $1.concurrent },
                inFlight: budget.holdings.values.reduce(0) { $0 + $1.inFlight }, holders: budget.holdings.count,
                requestsUsed: budget.requestsUsed + budget.holdings.values.reduce(0) { $0 + $1.outstandingRequests },
                tokensUsed: budget.tokensUsed + budget.holdings.values.reduce(0) { $0 + $1.outstandingTokens })
            budgets[name] = budget
            return usage
        }
    }
}
