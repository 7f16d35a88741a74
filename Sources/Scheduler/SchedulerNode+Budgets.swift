import FlowControl
import Wire

/// Tenants' cluster-wide budgets (`ClusterBudgets`, in the leader's soft state): the gateways'
/// lease renewals and `junction ctl tenants`.
extension SchedulerNode {
    func lease(_ request: BudgetLeaseRequest) async throws -> Envelope.Body {
        guard await leads(), let answer = leaseNow(request) else { return await notLeaderReply() }
        return try answer.get()
    }

    /// Renews a gateway's leases where the request is read; nil when this node does not lead
    /// (`lease` answers with where the leader is).
    func leaseNow(_ request: BudgetLeaseRequest) -> Result<Envelope.Body, WireError>? {
        guard syncLeadership(onReplica { $0.leadership }) else { return nil }
        let now = ContinuousClock.now - soft.epoch
        do {
            let grants = try soft.budgets.lease(holder: request.holder, asks: request.tenants.map(Self.ask), now: now)
            return .success(
                .budgetLeaseReply(
                    BudgetLeaseReply(
                        leaseMs: UInt32(LeaderSoftState.leasePeriod / .milliseconds(1)), gateways: UInt32(soft.budgets.gateways(now: now)),
                        grants: grants.map(Self.wire))))
        } catch {
            switch error {
            case .tooMany(let why): return .failure(WireError(.overloaded, "budget lease refused: \(why)"))
            }
        }
    }

    func tenants() async -> Envelope.Body {
        guard await leads() else { return await notLeaderReply() }
        let elapsed = ContinuousClock.now - soft.epoch
        let usage = soft.budgets.usage(now: elapsed)
        return .tenantsReply(
            TenantsReply(
                tenants: usage.map { use in
                    TenantBudget(
                        tenant: use.tenant, maxConcurrent: UInt32(use.limits.maxConcurrent ?? 0),
                        requestsPerMinute: UInt32(use.limits.requestsPerMinute ?? 0), tokensPerMinute: UInt64(use.limits.tokensPerMinute ?? 0),
                        requestsAvailable: use.requestsAvailable ?? 0, tokensAvailable: use.tokensAvailable ?? 0,
                        concurrentLeased: UInt32(clamping: use.concurrentLeased), inFlight: UInt32(clamping: use.inFlight),
                        holders: UInt32(clamping: use.holders), requestsUsed: use.requestsUsed, tokensUsed: use.tokensUsed)
                }, leaseMs: UInt32(LeaderSoftState.leasePeriod / .milliseconds(1)), gateways: UInt32(soft.budgets.gateways(now: elapsed)),
                leaderForMs: UInt64(max(0, elapsed / .milliseconds(1)))))
    }

    private static func ask(_ wire: TenantLeaseAsk) -> ClusterBudgets.Ask {
        var ask = ClusterBudgets.Ask(
            tenant: wire.tenant,
            limits: ClusterBudgets.Limits(
                maxConcurrent: wire.maxConcurrent == 0 ? nil : Int(wire.maxConcurrent),
                requestsPerMinute: wire.requestsPerMinute == 0 ? nil : Int(wire.requestsPerMinute),
                tokensPerMinute: wire.tokensPerMinute == 0 ? nil : Int(clamping: wire.tokensPerMinute)))
        ask.unspentRequests = wire.unspentRequests
        ask.unspentTokens = wire.unspentTokens
        ask.inFlight = Int(wire.inFlight)
        ask.wantConcurrent = Int(wire.wantConcurrent)
        ask.wantRequests = wire.wantRequests
        ask.wantTokens = wire.wantTokens
        ask.needRequests = wire.needRequests
        ask.needTokens = wire.needTokens
        return ask
    }

    private static func wire(_ grant: ClusterBudgets.Grant) -> TenantLeaseGrant {
        TenantLeaseGrant(
            tenant: grant.tenant, concurrent: UInt32(clamping: grant.concurrent), requests: grant.requests, tokens: grant.tokens,
            retryAfterMs: grant.retryAfter.map { UInt32(clamping: Int(($0 / .milliseconds(1)).rounded(.up))) } ?? 0)
    }
}
