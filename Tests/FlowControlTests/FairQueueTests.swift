import FlowControl
import Testing

@Suite struct FairQueueTests {
    /// interactive (no aging), standard (ages after 10 s), batch (ages after 20 s).
    let classes = [
        PriorityClass(name: "interactive", ttl: .seconds(30)),
        PriorityClass(name: "standard", ttl: .seconds(60), agingAfter: .seconds(10)),
        PriorityClass(name: "batch", ttl: .seconds(600), agingAfter: .seconds(20)),
    ]

    func queue(tenants: Int = 3, weights: [Double]? = nil, capacity: Int = 100) -> FairQueue {
        FairQueue(classes: classes, weights: weights ?? Array(repeating: 1, count: tenants), capacity: capacity)
    }

    func entry(_ id: UInt64, tenant: Int = 0, rank: Int = 1, at seconds: Int = 0, cost: Double = 100) -> FairQueue.Entry {
        FairQueue.Entry(id: id, tenant: tenant, classRank: rank, enqueued: .seconds(seconds), cost: cost)
    }

    /// Serves everything waiting at `now`, charging each its cost, and returns the ids in order.
    func drain(_ q: inout FairQueue, now: Duration = .zero) -> [UInt64] {
        var served: [UInt64] = []
        while let next = q.next(now: now) {
            q.charge(tenant: next.tenant, tokens: next.cost)
            served.append(next.id)
        }
        return served
    }

    @Test func aHigherBandIsServedFirstWhateverTheOrderOfArrival() {
        var q = queue()
        _ = q.join(entry(1, rank: 2), now: .zero)
        _ = q.join(entry(2, rank: 1), now: .zero)
        _ = q.join(entry(3, rank: 0), now: .zero)
        _ = q.join(entry(4, rank: 1), now: .zero)
        #expect(drain(&q) == [3, 2, 4, 1])
    }

    @Test func agingRaisesAWaitingRequestOneBandPerPeriod() {
        var q = queue()
        _ = q.join(entry(1, rank: 2, at: 0), now: .zero)
        #expect(q.band(of: entry(1, rank: 2, at: 0), now: .seconds(19)) == 2)
        #expect(q.band(of: entry(1, rank: 2, at: 0), now: .seconds(20)) == 1)
        #expect(q.band(of: entry(1, rank: 2, at: 0), now: .seconds(45)) == 0)
        // A standard request arriving at 25 s waits behind the batch one, now standard and older.
        _ = q.join(entry(2, rank: 1, at: 25), now: .seconds(25))
        #expect(q.next(now: .seconds(25))?.id == 1)
        // Interactive never ages (no period) and is never lowered.
        #expect(q.band(of: entry(3, rank: 0, at: 0), now: .seconds(1_000)) == 0)
    }

    @Test func withinABandTenantsShareByTokensServedNotByRequestsSent() {
        var q = queue(tenants: 2)
        // Tenant 0 floods ten requests before tenant 1's two arrive.
        for id in 0..<10 { _ = q.join(entry(UInt64(id), tenant: 0), now: .zero) }
        _ = q.join(entry(100, tenant: 1), now: .zero)
        _ = q.join(entry(101, tenant: 1), now: .zero)
        let order = drain(&q)
        // Tenant 1 is served as often as tenant 0 while both wait: within the first four.
        #expect(Set(order.prefix(4)).isSuperset(of: [100, 101]))
    }

    @Test func aTenantOfWeightTwoGetsTwiceTheShare() {
        var q = queue(tenants: 2, weights: [2, 1])
        for id in 0..<12 { _ = q.join(entry(UInt64(id), tenant: 0), now: .zero) }
        for id in 100..<112 { _ = q.join(entry(UInt64(id), tenant: 1), now: .zero) }
        let first = drain(&q).prefix(9)
        #expect(first.filter { $0 < 100 }.count == 6)
    }

    @Test func largerRequestsCountForMore() {
        var q = queue(tenants: 2)
        // Tenant 0 sends requests ten times the size of tenant 1's.
        for id in 0..<5 { _ = q.join(entry(UInt64(id), tenant: 0, cost: 1_000), now: .zero) }
        for id in 100..<120 { _ = q.join(entry(UInt64(id), tenant: 1, cost: 100), now: .zero) }
        let first = drain(&q).prefix(12)
        // After one large request, tenant 1 gets about ten small ones before tenant 0's next.
        #expect(first.filter { $0 < 100 }.count <= 2)
    }

    @Test func aTenantIdleForLongDoesNotBankCredit() {
        var q = queue(tenants: 2)
        // Tenant 0 has been served a great deal while tenant 1 was away.
        q.charge(tenant: 0, tokens: 100_000)
        for id in 0..<4 { _ = q.join(entry(UInt64(id), tenant: 0), now: .zero) }
        _ = q.next(now: .zero).map { q.charge(tenant: $0.tenant, tokens: $0.cost) }
        // Tenant 1 starts waiting: lifted to tenant 0's counter, it alternates instead of taking all.
        for id in 100..<104 { _ = q.join(entry(UInt64(id), tenant: 1), now: .zero) }
        #expect(q.counter(of: 1) == q.counter(of: 0))
        let order = drain(&q)
        #expect(order.prefix(4).filter { $0 >= 100 }.count == 2)
    }

    @Test func whenFullTheLowestClassIsShedThenTheTenantFurthestAheadThenTheNewest() {
        var q = queue(tenants: 2, capacity: 3)
        _ = q.join(entry(1, tenant: 1, rank: 2, at: 0), now: .zero)
        // Tenant 0 was served while tenant 1 waited: it is ahead.
        q.charge(tenant: 0, tokens: 500)
        _ = q.join(entry(2, tenant: 0, rank: 2, at: 1), now: .seconds(1))
        _ = q.join(entry(3, tenant: 1, rank: 2, at: 2), now: .seconds(2))
        // A standard request arrives: batch goes first, tenant 0 (furthest ahead) first among them.
        #expect(q.join(entry(4, tenant: 1, rank: 1, at: 3), now: .seconds(3)) == .queuedShedding(entry(2, tenant: 0, rank: 2, at: 1)))
        // Then tenant 1's newest batch request.
        #expect(q.join(entry(5, tenant: 0, rank: 0, at: 4), now: .seconds(4)) == .queuedShedding(entry(3, tenant: 1, rank: 2, at: 2)))
        // A batch request arriving now is itself the one to shed.
        #expect(q.join(entry(6, tenant: 1, rank: 2, at: 5), now: .seconds(5)) == .rejected)
        #expect(q.count == 3)
        #expect(drain(&q, now: .seconds(5)) == [5, 4, 1])
    }

    @Test func anArrivalOfAHigherClassOrALaggingTenantHasNothingAhead() {
        var q = queue(tenants: 3)
        q.charge(tenant: 0, tokens: 1_000)
        _ = q.join(entry(1, tenant: 0, rank: 2), now: .zero)
        #expect(!q.hasAnythingAhead(ofTenant: 1, classRank: 1, now: .zero))
        #expect(q.hasAnythingAhead(ofTenant: 0, classRank: 2, now: .zero))
        // A tenant starting to wait is lifted to the waiting ones' counter: it queues behind them.
        #expect(q.hasAnythingAhead(ofTenant: 2, classRank: 2, now: .zero))
        // Aged into band 1 after 20 s, the batch request is ahead of a standard arrival.
        #expect(q.hasAnythingAhead(ofTenant: 1, classRank: 1, now: .seconds(20)))
    }

    @Test func onePoolsWaitersNeverHoldBackAnothers() {
        var q = queue(tenants: 2)
        _ = q.join(FairQueue.Entry(id: 1, tenant: 0, classRank: 2, enqueued: .zero, cost: 100, pool: "busy-model"), now: .zero)
        // A request for another model has nothing ahead of it, even of a lower class.
        #expect(!q.hasAnythingAhead(ofTenant: 1, classRank: 2, pool: "idle-model", now: .zero))
        #expect(q.hasAnythingAhead(ofTenant: 1, classRank: 2, pool: "busy-model", now: .zero))
        _ = q.join(FairQueue.Entry(id: 2, tenant: 1, classRank: 2, enqueued: .seconds(1), cost: 100, pool: "idle-model"), now: .seconds(1))
        // A signal for the idle model's engines wakes its own waiter, not the older one.
        #expect(q.next(now: .seconds(1), pool: "idle-model")?.id == 2)
        #expect(q.next(now: .seconds(1), pool: "idle-model") == nil)
        #expect(q.next(now: .seconds(1))?.id == 1)
    }

    @Test func aWokenRequestThatRejoinsTakesItsOldPlaceAndIsNotTheOneShed() {
        var q = queue(tenants: 1, capacity: 3)
        for id in 1...3 { _ = q.join(entry(UInt64(id), at: id), now: .seconds(id)) }
        // The first is woken; a newer one takes the free place meanwhile.
        let woken = q.next(now: .seconds(4))
        #expect(woken?.id == 1)
        _ = q.join(entry(4, at: 4), now: .seconds(4))
        // Told to wait again, it rejoins in front, and the newest is shed to make room.
        #expect(q.join(entry(1, at: 1), now: .seconds(5)) == .queuedShedding(entry(4, at: 4)))
        #expect(drain(&q, now: .seconds(5)) == [1, 2, 3])
    }

    @Test func removingAnyEntryKeepsTheRestInOrder() {
        var q = queue(tenants: 1)
        for id in 0..<50 { _ = q.join(entry(UInt64(id), at: id), now: .seconds(id)) }
        for id in stride(from: 0, to: 50, by: 3) { #expect(q.remove(UInt64(id), tenant: 0, classRank: 1) != nil) }
        #expect(q.remove(0, tenant: 0, classRank: 1) == nil)
        #expect(drain(&q, now: .seconds(50)) == (0..<50).filter { $0 % 3 != 0 }.map(UInt64.init))
    }
}
