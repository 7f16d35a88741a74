import FlowControl
import Testing

@Suite struct TenantLedgerTests {
    @Test func concurrencyIsRefusedAtTheLimitAndFreedWhenARequestEnds() {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, maxConcurrent: 2), now: .zero)
        #expect(ledger.admit(estimatedTokens: 10, now: .zero) == nil)
        #expect(ledger.admit(estimatedTokens: 10, now: .zero) == nil)
        #expect(ledger.admit(estimatedTokens: 10, now: .zero)?.0 == .concurrency(limit: 2))
        ledger.settle(estimatedTokens: 10, usedTokens: 12, reachedEngine: true, now: .zero)
        #expect(ledger.admit(estimatedTokens: 10, now: .zero) == nil)
    }

    @Test func requestsPerMinuteRefusesWithTheWaitUntilOneIsAllowed() throws {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, requestsPerMinute: 2), now: .zero)
        #expect(ledger.admit(estimatedTokens: 1, now: .zero) == nil)
        #expect(ledger.admit(estimatedTokens: 1, now: .zero) == nil)
        let answer = ledger.admit(estimatedTokens: 1, now: .zero)
        let refused = try #require(answer)
        #expect(refused.0 == .requestsPerMinute(limit: 2))
        #expect(about(refused.retryAfter, .seconds(30)))
    }

    @Test func tokensAreEstimatedAtAdmissionAndCorrectedFromUsage() {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, requestsPerMinute: 100, tokensPerMinute: 1_000), now: .zero)
        #expect(ledger.admit(estimatedTokens: 900, now: .zero) == nil)
        // 100 left: a second request of 200 is refused and does not keep its request.
        #expect(ledger.admit(estimatedTokens: 200, now: .zero)?.0 == .tokensPerMinute(limit: 1_000))
        #expect(ledger.remaining(now: .zero).requests == 99)
        // It used 300 of its 900: 600 come back.
        ledger.settle(estimatedTokens: 900, usedTokens: 300, reachedEngine: true, now: .zero)
        #expect(ledger.remaining(now: .zero).tokens == 700)
        #expect(ledger.admit(estimatedTokens: 200, now: .zero) == nil)
    }

    @Test func aRequestThatNeverReachedAnEngineGivesBackItsRequestAndTokens() {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, requestsPerMinute: 1, tokensPerMinute: 100), now: .zero)
        #expect(ledger.admit(estimatedTokens: 100, now: .zero) == nil)
        ledger.settle(estimatedTokens: 100, usedTokens: 0, reachedEngine: false, now: .zero)
        #expect(ledger.remaining(now: .zero).requests == 1 && ledger.remaining(now: .zero).tokens == 100)
        #expect(ledger.inFlight == 0)
    }

    @Test func aShareScalesEveryLimit() {
        var ledger = TenantLedger(policy: TenantPolicy(name: "t", classRank: 0, maxConcurrent: 9, requestsPerMinute: 90), now: .zero)
        ledger.setShare(1.0 / 3, now: .zero)
        #expect(ledger.concurrencyAllowed == 3)
        for _ in 0..<3 { #expect(ledger.admit(estimatedTokens: 1, now: .zero) == nil) }
        #expect(ledger.admit(estimatedTokens: 1, now: .zero)?.0 == .concurrency(limit: 9))
    }
}
