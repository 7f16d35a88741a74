import FlowControl
import Logging
import Synchronization
import Wire

/// Keeps this gateway's leases of tenants' cluster-wide budgets with the scheduler leader
/// (`ClusterBudgets` there, `TenantLedger`'s lease here). One lease call at a time: the requests
/// that need a lease while one is under way go into the next, which follows at once, so a burst
/// of a tenant's requests costs one call. Every renewal period a call renews every tenant that
/// holds a lease or saw requests, gives back what idle tenants hold, and tells the leader this
/// gateway is alive (the gateways counted divide each limit in fallback). A call that fails puts
/// flow control on this gateway's share of each limit until one succeeds.
final class LeaseKeeper: Sendable {
    private let flow: FlowGate
    private let link: SchedulerLink
    private let metrics: GatewayMetrics
    private let logger: Logger
    /// This gateway process, to the leader.
    let holder = UInt64.random(in: 1...UInt64.max)

    private struct Waiting {
        /// The estimated tokens of the first request waiting: the least the grant must cover.
        var need: Int
        var answered: [@Sendable () -> Void]
    }

    private struct State {
        var calling = false
        var waiting: [Int: Waiting] = [:]
        var renewDue = false
        /// How often to renew: a third of the lease the leader last gave.
        var renewEvery = Duration.seconds(1)
    }

    private let state = Mutex(State())

    init(flow: FlowGate, link: SchedulerLink, metrics: GatewayMetrics, logger: Logger) {
        self.flow = flow
        self.link = link
        self.metrics = metrics
        self.logger = logger
    }

    /// A request of `tenant` needs more of its budget than this gateway holds: `answered` runs
    /// (on the task that called) once the leader answered, or did not.
    func need(tenant: Int, estimatedTokens: Int, answered: @escaping @Sendable () -> Void) {
        let start = state.withLock { state -> Bool in
            state.waiting[tenant, default: Waiting(need: estimatedTokens, answered: [])].answered.append(answered)
            guard !state.calling else { return false }
            state.calling = true
            return true
        }
        if start { Task { await self.callWhileAsked() } }
    }

    /// Renews every period until cancelled (only when the config turns cluster budgets on).
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: state.withLock { $0.renewEvery })
            let start = state.withLock { state -> Bool in
                state.renewDue = true
                guard !state.calling else { return false }
                state.calling = true
                return true
            }
            if start { await callWhileAsked() }
        }
    }

    /// Calls until nothing waits and no renewal is due; the last to leave clears `calling`
    /// under the same lock that adds to the waiting, so no request is left behind.
    private func callWhileAsked() async {
        while true {
            let taken = state.withLock { state -> (waiting: [Int: Waiting], renewing: Bool)? in
                guard !state.waiting.isEmpty || state.renewDue else {
                    state.calling = false
                    return nil
                }
                defer {
                    state.waiting = [:]
                    state.renewDue = false
                }
                return (state.waiting, state.renewDue)
            }
            guard let taken else { return }
            await call(needs: taken.waiting.mapValues(\.need), renewing: taken.renewing)
            for waiting in taken.waiting.values { for answered in waiting.answered { answered() } }
        }
    }

    private func call(needs: [Int: Int], renewing: Bool) async {
        let askedAt = flow.now
        let asks = flow.leaseAsks(needs: needs, renewing: renewing)
        let request = BudgetLeaseRequest(holder: holder, tenants: asks.map { Self.wire($0.ask) })
        do {
            let reply = try await link.lease(request)
            let grants = zip(asks, reply.grants).map { ($0.tenant, Self.grant($1)) }
            let lease = Duration.milliseconds(Int(reply.leaseMs))
            let wasUsing = flow.usesLeases
            flow.applyGrants(grants, gateways: Int(reply.gateways), expires: askedAt + lease)
            state.withLock { $0.renewEvery = max(.milliseconds(100), lease / 3) }
            metrics.budgetLease(outcome: "granted")
            metrics.budgetShare(leased: true)
            metrics.budgetGateways(max(1, Int(reply.gateways)))
            if !wasUsing { logger.notice("tenant limits are the leader's cluster-wide budgets again", metadata: ["gateways": "\(reply.gateways)"]) }
        } catch {
            let wasUsing = flow.usesLeases
            flow.leaseFailed(tenants: asks.map(\.tenant))
            metrics.budgetLease(outcome: "failed")
            metrics.budgetShare(leased: false)
            if wasUsing {
                logger.warning(
                    "the leader did not renew the tenants' budget leases: each limit is this gateway's share until it does",
                    metadata: ["error": "\(error)"])
            }
        }
    }

    private static func wire(_ ask: ClusterBudgets.Ask) -> TenantLeaseAsk {
        TenantLeaseAsk(
            tenant: ask.tenant, maxConcurrent: UInt32(clamping: ask.limits.maxConcurrent ?? 0),
            requestsPerMinute: UInt32(clamping: ask.limits.requestsPerMinute ?? 0), tokensPerMinute: UInt64(clamping: ask.limits.tokensPerMinute ?? 0),
            unspentRequests: ask.unspentRequests, unspentTokens: ask.unspentTokens, inFlight: UInt32(clamping: ask.inFlight),
            wantConcurrent: UInt32(clamping: ask.wantConcurrent), wantRequests: ask.wantRequests, wantTokens: ask.wantTokens,
            needRequests: ask.needRequests, needTokens: ask.needTokens)
    }

    private static func grant(_ wire: TenantLeaseGrant) -> ClusterBudgets.Grant {
        ClusterBudgets.Grant(
            tenant: wire.tenant, concurrent: Int(wire.concurrent), requests: wire.requests.isFinite ? wire.requests : 0,
            tokens: wire.tokens.isFinite ? wire.tokens : 0, retryAfter: wire.retryAfterMs == 0 ? nil : .milliseconds(Int(wire.retryAfterMs)))
    }
}
