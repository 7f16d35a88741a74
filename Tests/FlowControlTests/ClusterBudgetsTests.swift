import FlowControl
import Seeded
import Testing

@Suite struct ClusterBudgetsTests {
    let lease = Duration.seconds(3)
    /// A minute on: a per-minute bucket spent at the start has filled again.
    let later = Duration.seconds(60)

    func ask(_ limits: ClusterBudgets.Limits, tenant: String = "t", build: (inout ClusterBudgets.Ask) -> Void = { _ in }) -> ClusterBudgets.Ask {
        var ask = ClusterBudgets.Ask(tenant: tenant, limits: limits)
        build(&ask)
        return ask
    }

    @Test func aNewLeadersBucketsStartFullAndRefillAtTheLimitsRate() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let rpm = ClusterBudgets.Limits(requestsPerMinute: 60)
        let first = try budgets.lease(holder: 1, asks: [ask(rpm) { $0.wantRequests = 100; $0.needRequests = 1 }], now: .zero)
        #expect(first[0].requests == 60)
        let second = try budgets.lease(holder: 1, asks: [ask(rpm) { $0.wantRequests = 100; $0.needRequests = 1 }], now: .zero)
        #expect(second[0].requests == 0)
        #expect(second[0].retryAfter == .seconds(1))
        let third = try budgets.lease(holder: 1, asks: [ask(rpm) { $0.wantRequests = 5; $0.needRequests = 1 }], now: .milliseconds(3_500))
        #expect(third[0].requests == 3)  // whole requests: the half stays in the bucket
    }

    @Test func holdersSplitABucketByWhatEachWantsAndGiveBackWhatTheyDidNotSpend() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let rpm = ClusterBudgets.Limits(requestsPerMinute: 60)
        // Alone, a holder gets what it wants (the bucket is full: 60).
        let a = try budgets.lease(holder: 1, asks: [ask(rpm) { $0.wantRequests = 20; $0.needRequests = 1 }], now: later)
        #expect(a[0].requests == 20)
        // A second holder wanting as much gets its part of the 40 left: half, as both want 20.
        let b = try budgets.lease(holder: 2, asks: [ask(rpm) { $0.wantRequests = 20 }], now: later)
        #expect(b[0].requests == 20)
        // The first gives back 15 it did not spend: the leader has 20 + 15, and counts 5 used.
        let again = try budgets.lease(holder: 1, asks: [ask(rpm) { $0.unspentRequests = 15 }], now: later)
        #expect(again[0].requests == 0)
        let usage = budgets.usage(now: later)
        #expect(usage.first?.requestsAvailable == 35)
        #expect(usage.first?.requestsUsed == 25)  // 5 spent by holder 1, 20 held by holder 2
    }

    @Test func aNeedIsGrantedWholeWhenTheBucketHoldsItAndNotAtAllWhenItDoesNot() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let tpm = ClusterBudgets.Limits(tokensPerMinute: 600)
        // Another holder's large want does not shrink a need below what one request needs.
        _ = try budgets.lease(holder: 2, asks: [ask(tpm) { $0.wantTokens = 100_000 }], now: later)
        let starved = try budgets.lease(holder: 1, asks: [ask(tpm) { $0.wantTokens = 300; $0.needTokens = 300 }], now: later)
        #expect(starved[0].tokens == 0)
        #expect(starved[0].retryAfter == .seconds(30))  // 300 tokens at 600 a minute
        let fed = try budgets.lease(holder: 1, asks: [ask(tpm) { $0.wantTokens = 300; $0.needTokens = 300 }], now: later + .seconds(30))
        #expect(fed[0].tokens == 300)
    }

    @Test func concurrencyIsMaxMinFairAndNeverLeasedAboveTheLimit() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let four = ClusterBudgets.Limits(maxConcurrent: 4)
        let a = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4 }], now: later)
        #expect(a[0].concurrent == 4)
        // The first holds all four: the second gets nothing until it gives some up.
        let b = try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)
        #expect(b[0].concurrent == 0 && b[0].retryAfter == .seconds(1))
        // The first renews with two running: it shrinks to its fair share, two.
        let a2 = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4; $0.inFlight = 2 }], now: later)
        #expect(a2[0].concurrent == 2)
        // Its next renewal shows it has the answer: the two it gave up go to the second.
        _ = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4; $0.inFlight = 2 }], now: later)
        let b2 = try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)
        #expect(b2[0].concurrent == 2)
    }

    @Test func aHoldersRunningRequestsCountAgainstOthersUntilTheyEnd() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let four = ClusterBudgets.Limits(maxConcurrent: 4)
        _ = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4 }], now: later)
        // Its fair share is 2, but 4 still run: nothing is free for the second yet.
        _ = try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)
        let a = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4; $0.inFlight = 4 }], now: later)
        #expect(a[0].concurrent == 2)
        let b = try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)
        #expect(b[0].concurrent == 0)
    }

    @Test func anExpiredHoldingFreesItsAllowanceAndItsGrantCountsAsUsed() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let limits = ClusterBudgets.Limits(maxConcurrent: 4, requestsPerMinute: 60)
        _ = try budgets.lease(holder: 1, asks: [ask(limits) { $0.wantConcurrent = 4; $0.wantRequests = 10 }], now: later)
        #expect(budgets.gateways(now: later) == 1)
        let after = later + lease
        #expect(budgets.gateways(now: after) == 0)
        let b = try budgets.lease(holder: 2, asks: [ask(limits) { $0.wantConcurrent = 4 }], now: after)
        #expect(b[0].concurrent == 4)
        #expect(budgets.usage(now: after).first?.requestsUsed == 10)
    }

    @Test func aLimitChangedInTheGatewaysConfigResizesTheBucket() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        _ = try budgets.lease(holder: 1, asks: [ask(ClusterBudgets.Limits(requestsPerMinute: 600))], now: later)
        _ = try budgets.lease(holder: 1, asks: [ask(ClusterBudgets.Limits(requestsPerMinute: 60))], now: later)
        let usage = budgets.usage(now: later)
        #expect(usage.first?.limits.requestsPerMinute == 60)
        #expect(usage.first?.requestsAvailable == 60)
    }

    @Test func holdersAndTenantsAreBounded() throws {
        var budgets = ClusterBudgets(leasePeriod: lease, maxTenants: 2, maxHolders: 2)
        let rpm = ClusterBudgets.Limits(requestsPerMinute: 60)
        _ = try budgets.lease(holder: 1, asks: [], now: later)
        _ = try budgets.lease(holder: 2, asks: [], now: later)
        #expect(throws: ClusterBudgets.Refusal.self) { try budgets.lease(holder: 3, asks: [], now: later) }
        #expect(throws: ClusterBudgets.Refusal.self) {
            try budgets.lease(holder: 1, asks: [ask(rpm, tenant: "a"), ask(rpm, tenant: "b"), ask(rpm, tenant: "c")], now: later)
        }
        // Once the first two expire, a third gateway is welcome.
        _ = try budgets.lease(holder: 3, asks: [], now: later + lease)
    }

    /// A holder whose allowance shrinks may admit under the old one until the answer reaches it:
    /// the others are not given what it may still be using.
    @Test func aShrinkingAllowanceCountsAtItsOldSizeUntilItsHolderAsksAgain() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let four = ClusterBudgets.Limits(maxConcurrent: 4)
        _ = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4 }], now: later)
        _ = try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)
        // The first shrinks to 2 with 2 running; before the answer arrives it admits 2 more.
        let shrunk = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4; $0.inFlight = 2 }], now: later)
        #expect(shrunk[0].concurrent == 2)
        let second = try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)
        #expect(second[0].concurrent == 0)
        // It asks again (so it has the answer), with its 4 running: still nothing free.
        _ = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 4; $0.inFlight = 4 }], now: later)
        #expect(try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)[0].concurrent == 0)
        // Two of them end and it says so: the other gets its share.
        _ = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 3; $0.inFlight = 2 }], now: later)
        _ = try budgets.lease(holder: 1, asks: [ask(four) { $0.wantConcurrent = 3; $0.inFlight = 2 }], now: later)
        #expect(try budgets.lease(holder: 2, asks: [ask(four) { $0.wantConcurrent = 2 }], now: later)[0].concurrent == 2)
    }

    /// Whatever a gateway's numbers, the leader neither traps nor keeps a debt beyond a minute's
    /// budget: a need of 10^17 tokens gets at most the whole bucket, and a debt of 10^300 comes back
    /// as one minute's.
    @Test func hugeNeedsAndDebtsAreBoundedByTheBucket() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let tpm = ClusterBudgets.Limits(tokensPerMinute: 100_000)
        let huge = try budgets.lease(holder: 1, asks: [ask(tpm) { $0.wantTokens = 1e17; $0.needTokens = 1e17 }], now: later)
        #expect(huge[0].tokens == 100_000)
        let debt = try budgets.lease(holder: 1, asks: [ask(tpm) { $0.unspentTokens = -1e300; $0.needTokens = 1e17 }], now: later)
        #expect(debt[0].tokens == 0)
        let wait = try #require(debt[0].retryAfter)
        #expect(wait <= .seconds(121))
        // A minute of debt, then a minute to fill: two minutes on, the whole bucket again.
        let refilled = try budgets.lease(holder: 1, asks: [ask(tpm) { $0.wantTokens = 1; $0.needTokens = 1e17 }], now: later + .seconds(121))
        #expect(refilled[0].tokens == 100_000)
    }

    @Test func aLimitAnAskDoesNotStateIsKeptNotDroppedAndRefilled() throws {
        var budgets = ClusterBudgets(leasePeriod: lease)
        let both = ClusterBudgets.Limits(requestsPerMinute: 10, tokensPerMinute: 1_000)
        _ = try budgets.lease(holder: 1, asks: [ask(both) { $0.wantTokens = 1_000 }], now: later)
        // A gateway whose config lacks the token limit renews: the spent bucket stays spent.
        _ = try budgets.lease(holder: 2, asks: [ask(ClusterBudgets.Limits(requestsPerMinute: 10))], now: later)
        let again = try budgets.lease(holder: 1, asks: [ask(both) { $0.wantTokens = 1_000; $0.needTokens = 10 }], now: later)
        #expect(again[0].tokens == 0)
        #expect(budgets.usage(now: later).first?.limits == both)
    }

    @Test func aBudgetNobodyHoldsIsForgottenOnceItsBucketsAreFullAgain() throws {
        var budgets = ClusterBudgets(leasePeriod: lease, maxTenants: 1)
        let rpm = ClusterBudgets.Limits(requestsPerMinute: 60)
        _ = try budgets.lease(holder: 1, asks: [ask(rpm, tenant: "a") { $0.wantRequests = 30 }], now: later)
        // Held, and then spent: tenant b does not fit.
        #expect(throws: ClusterBudgets.Refusal.self) { try budgets.lease(holder: 1, asks: [ask(rpm, tenant: "b")], now: later) }
        #expect(throws: ClusterBudgets.Refusal.self) { try budgets.lease(holder: 1, asks: [ask(rpm, tenant: "b")], now: later + lease) }
        // Thirty seconds later a's bucket is full again and nobody holds it: b takes its place.
        _ = try budgets.lease(holder: 1, asks: [ask(rpm, tenant: "b")], now: later + .seconds(30))
        #expect(budgets.usage(now: later + .seconds(30)).map(\.tenant) == ["b"])
    }

    @Test func fairSharesFillTheSmallWantsFirstAndSplitTheRest() {
        #expect(ClusterBudgets.fairShares(of: 10, wants: [1: 1, 2: 10, 3: 10]) == [1: 1, 2: 5, 3: 4])
        #expect(ClusterBudgets.fairShares(of: 10, wants: [1: 2, 2: 3]) == [1: 2, 2: 3])
        #expect(ClusterBudgets.fairShares(of: 3, wants: [7: 5, 8: 5, 9: 5]) == [7: 1, 8: 1, 9: 1])
        #expect(ClusterBudgets.fairShares(of: 4, wants: [1: 0, 2: 9]) == [2: 4])
        // The remainder turns: no holder is always the one left short.
        #expect(ClusterBudgets.fairShares(of: 2, wants: [7: 5, 8: 5, 9: 5], rotation: 0) == [7: 1, 8: 1])
        #expect(ClusterBudgets.fairShares(of: 2, wants: [7: 5, 8: 5, 9: 5], rotation: 1) == [8: 1, 9: 1])
        #expect(ClusterBudgets.fairShares(of: 2, wants: [7: 5, 8: 5, 9: 5], rotation: 2) == [9: 1, 7: 1])
    }

    /// Whatever three gateways ask, in any order and at any time: the allowances held never sum
    /// above the concurrency limit, the requests leased out and not given
    /// back never exceed what one bucket would allow (a full minute's, and the refill since),
    /// and requests are granted whole.
    @Test(arguments: 1...40) func noSequenceOfAsksLeasesMoreThanTheLimits(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        var budgets = ClusterBudgets(leasePeriod: lease)
        let limits = ClusterBudgets.Limits(maxConcurrent: 5, requestsPerMinute: 120)
        var now = Duration.zero
        var held: [UInt64: (concurrent: Int, requests: Double, expires: Duration)] = [:]
        var outstanding = 0.0
        for _ in 0..<300 {
            now += .milliseconds(Int(random.next() % 400))
            let holder = 1 + random.next() % 3
            let previous = held[holder].flatMap { $0.expires > now ? $0 : nil }
            // It spends some of what it holds and gives back the rest.
            let unspent = (previous?.requests ?? 0) * Double(random.next() % 2)
            let grant = try budgets.lease(
                holder: holder,
                asks: [
                    ask(limits) {
                        $0.unspentRequests = unspent
                        $0.inFlight = min(previous?.concurrent ?? 0, Int(random.next() % 3))
                        $0.wantConcurrent = Int(random.next() % 7)
                        $0.wantRequests = Double(random.next() % 20)
                        $0.needRequests = Double(random.next() % 2)
                    }
                ], now: now)[0]
            outstanding += grant.requests - unspent
            #expect(grant.requests == grant.requests.rounded(.down))
            held[holder] = (grant.concurrent, grant.requests, now + lease)
            let live = held.values.filter { $0.expires > now }.reduce(0) { $0 + $1.concurrent }
            #expect(live <= 5, "allowances \(held) at \(now)")
            #expect(outstanding <= 120 + 2 * (now / .seconds(1)) + 1e-6, "leased \(outstanding) by \(now)")
        }
    }
}
