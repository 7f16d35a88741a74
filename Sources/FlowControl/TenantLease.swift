/// What the scheduler leader granted this gateway of one tenant's cluster-wide budget
/// (`ClusterBudgets`): how many of the tenant's requests it may run, and how many requests and
/// tokens it may start, until `expires`.
public struct TenantLease: Sendable, Equatable {
    public var concurrent = 0
    /// Below zero after requests used more tokens than they were charged: a debt the next grant pays.
    public var requests = 0.0
    public var tokens = 0.0
    public var expires: Duration
    /// The leader said its budget cannot cover more before this: requests refused until then
    /// do not ask it again.
    public var askAfter: Duration = .zero

    public init(expires: Duration) {
        self.expires = expires
    }

    /// The limit this lease cannot cover a request under, if any.
    func shortfall(policy: TenantPolicy, inFlight: Int, estimatedTokens: Int) -> LimitRefusal? {
        if let limit = policy.maxConcurrent, inFlight >= concurrent { return .concurrency(limit: limit) }
        if let limit = policy.requestsPerMinute, requests < 1 { return .requestsPerMinute(limit: limit) }
        // A request estimated above the whole limit needs only a lease of the whole limit.
        if let limit = policy.tokensPerMinute, tokens < min(Double(estimatedTokens), Double(limit)) { return .tokensPerMinute(limit: limit) }
        return nil
    }
}

extension TenantPolicy {
    public var limits: ClusterBudgets.Limits {
        ClusterBudgets.Limits(maxConcurrent: maxConcurrent, requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute)
    }
}
