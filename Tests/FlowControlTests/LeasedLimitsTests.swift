import FlowControl
import Testing

/// A tenant's limits under the leader's leases: the gateway's side (`TenantLedger`,
/// `FlowController`) against the leader's (`ClusterBudgets`), in one process and on one clock.
@Suite struct LeasedLimitsTests {
    let lease = Duration.seconds(3)

    func configuration(_ policy: TenantPolicy, cluster: Bool = true) -> FlowConfiguration {
        FlowConfiguration(tenants: [policy], queueCapacity: 8, clusterBudgets: cluster)
    }

    @Test func withoutALeaseTheLeaderIsAskedAndItsGrantDecides() {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, requestsPerMinute: 60), now: .zero)
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .zero, mayAsk: true) == .askLeader)
        let ask = ledger.leaseAsk(need: 10, now: .zero)
        #expect(ask?.needRequests == 1 && ask?.wantRequests == 3)
        ledger.applyGrant(ClusterBudgets.Grant(tenant: "t", concurrent: 0, requests: 2, tokens: 0), expires: lease, now: .zero)
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .zero, mayAsk: false) == .admitted)
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .zero, mayAsk: true) == .admitted)
        // Spent: the next asks again; told to wait 5 s, those until then are refused without asking.
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .zero, mayAsk: true) == .askLeader)
        _ = ledger.leaseAsk(need: 10, now: .zero)
        ledger.applyGrant(ClusterBudgets.Grant(tenant: "t", concurrent: 0, requests: 0, tokens: 0, retryAfter: .seconds(5)), expires: lease, now: .zero)
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .zero, mayAsk: false) == .refused(.requestsPerMinute(limit: 60), retryAfter: .seconds(5)))
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .seconds(1), mayAsk: true) == .refused(.requestsPerMinute(limit: 60), retryAfter: .seconds(4)))
        #expect(ledger.admitLeased(estimatedTokens: 10, now: .seconds(5), mayAsk: true) == .askLeader)
    }

    @Test func anAskGivesBackWhatIsUnspentAndAnIdleTenantReleasesItsLease() throws {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, maxConcurrent: 4, tokensPerMinute: 1_000), now: .zero)
        _ = ledger.admitLeased(estimatedTokens: 100, now: .zero, mayAsk: true)
        _ = ledger.leaseAsk(need: 100, now: .zero)
        ledger.applyGrant(ClusterBudgets.Grant(tenant: "t", concurrent: 2, requests: 0, tokens: 500), expires: lease, now: .zero)
        #expect(ledger.admitLeased(estimatedTokens: 100, now: .zero, mayAsk: false) == .admitted)
        // It used 150 of the 100 charged: the lease owes 50.
        ledger.settle(estimatedTokens: 100, usedTokens: 150, reachedEngine: true, toLease: true, now: .seconds(1))
        #expect(ledger.admitLeased(estimatedTokens: 100, now: .seconds(1), mayAsk: true) == .admitted)
        let renewed = ledger.leaseAsk(need: nil, now: .seconds(1))
        let renewal = try #require(renewed)
        #expect(renewal.unspentTokens == 250)
        #expect(renewal.inFlight == 1 && renewal.wantConcurrent == 2 && renewal.wantTokens == 200)
        #expect(ledger.lease?.tokens == 0)
        ledger.applyGrant(ClusterBudgets.Grant(tenant: "t", concurrent: 1, requests: 0, tokens: 200), expires: .seconds(4), now: .seconds(1))
        ledger.settle(estimatedTokens: 100, usedTokens: 100, reachedEngine: true, toLease: true, now: .seconds(2))
        // Nothing came in since: the next renewal gives all back and keeps no lease.
        let released = ledger.leaseAsk(need: nil, now: .seconds(2))
        let release = try #require(released)
        #expect(release.unspentTokens == 200 && release.wantConcurrent == 0 && release.wantTokens == 0)
        #expect(ledger.lease == nil)
        ledger.applyGrant(ClusterBudgets.Grant(tenant: "t", concurrent: 0, requests: 0, tokens: 0), expires: .seconds(5), now: .seconds(2))
        #expect(ledger.lease == nil)
        #expect(ledger.leaseAsk(need: nil, now: .seconds(3)) == nil)
    }

    @Test func whenTheLeaderDoesNotAnswerTheGatewaysShareDecides() {
        var flow = FlowController(configuration: configuration(TenantPolicy(name: "t", classRank: 0, maxConcurrent: 4)), now: .zero)
        flow.applyGrants([], gateways: 2, expires: lease, now: .zero)
        var first = FlowTicket(id: 1, tenant: 0, classRank: 0, estimatedTokens: 10)
        #expect(flow.arrive(&first, now: .zero).0 == .askLeader)
        flow.leaseFailed(tenants: [0])
        #expect(!flow.usesLeases)
        // Its share is half the limit: two.
        #expect(flow.arrive(&first, now: .zero, mayAsk: false).0 == .proceed)
        var second = FlowTicket(id: 2, tenant: 0, classRank: 0, estimatedTokens: 10)
        #expect(flow.arrive(&second, now: .zero).0 == .proceed)
        var third = FlowTicket(id: 3, tenant: 0, classRank: 0, estimatedTokens: 10)
        #expect(flow.arrive(&third, now: .zero).0 == .refused(.concurrency(limit: 4), retryAfter: .seconds(1)))
        // The leader answers again: leases decide.
        flow.applyGrants([], gateways: 2, expires: lease, now: .zero)
        #expect(flow.arrive(&third, now: .zero).0 == .askLeader)
    }

    @Test func aRequestChargedToTheShareSettlesThereNotInTheLease() {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, tokensPerMinute: 1_000), now: .zero)
        // The leader did not answer: charged to the own bucket (1,000), estimated at 900.
        #expect(ledger.admitLeased(estimatedTokens: 900, now: .zero, mayAsk: false) == .admittedByShare)
        // A lease comes meanwhile; the request ends having used 100.
        _ = ledger.leaseAsk(need: nil, now: .zero)
        ledger.applyGrant(ClusterBudgets.Grant(tenant: "t", concurrent: 0, requests: 0, tokens: 50), expires: lease, now: .zero)
        ledger.settle(estimatedTokens: 900, usedTokens: 100, reachedEngine: true, toLease: false, now: .zero)
        // The 800 not used go back to the bucket they came from; the lease keeps its 50.
        #expect(ledger.lease?.tokens == 50)
        #expect(ledger.remaining(now: .zero).tokens == 900)
    }

    /// Two gateways and one leader: thirty requests of a tenant limited to ten a minute, sent to
    /// either gateway in turn within three seconds. Together they admit the limit (a fraction of a
    /// request may be left in each lease), and each admits some; alone, each would admit ten.
    @Test(arguments: [true, false]) func twoGatewaysTogetherAdmitOneLimit(cluster: Bool) {
        let policy = TenantPolicy(name: "t", classRank: 0, requestsPerMinute: 10)
        var leader = ClusterBudgets(leasePeriod: lease)
        var gateways = [0, 1].map { _ in FlowController(configuration: configuration(policy, cluster: cluster), now: .zero) }
        var admitted = [0, 0]
        var now = Duration.seconds(60)
        var lastRenewal = now
        for id in 0..<30 {
            now += .milliseconds(100)
            let at = id % 2
            if cluster, now - lastRenewal >= .seconds(1) {
                for index in 0..<2 { exchange(&gateways[index], holder: UInt64(index + 1), leader: &leader, needs: [:], renewing: true, now: now) }
                lastRenewal = now
            }
            var ticket = FlowTicket(id: UInt64(id), tenant: 0, classRank: 0, estimatedTokens: 10)
            var (arrival, _) = gateways[at].arrive(&ticket, now: now)
            if arrival == .askLeader {
                exchange(&gateways[at], holder: UInt64(at + 1), leader: &leader, needs: [0: 10], renewing: false, now: now)
                arrival = gateways[at].arrive(&ticket, now: now, mayAsk: false).0
            }
            if arrival == .proceed {
                admitted[at] += 1
                gateways[at].served(&ticket)
                gateways[at].finished(ticket, usedTokens: 10, now: now)
            }
        }
        if cluster {
            #expect((8...10).contains(admitted[0] + admitted[1]), "admitted \(admitted)")
            #expect(admitted[0] > 0 && admitted[1] > 0, "admitted \(admitted)")
        } else {
            #expect(admitted == [10, 10])
        }
    }

    /// One lease call between a gateway and the leader, as `LeaseKeeper` makes it.
    private func exchange(
        _ gateway: inout FlowController, holder: UInt64, leader: inout ClusterBudgets, needs: [Int: Int], renewing: Bool, now: Duration
    ) {
        let asks = gateway.leaseAsks(needs: needs, renewing: renewing, now: now)
        guard let grants = try? leader.lease(holder: holder, asks: asks.map(\.ask), now: now) else {
            return gateway.leaseFailed(tenants: asks.map(\.tenant))
        }
        gateway.applyGrants(zip(asks, grants).map { ($0.tenant, $1) }, gateways: leader.gateways(now: now), expires: now + lease, now: now)
    }
}
