import FlowControl
import Testing

/// Within a microsecond: waits are computed in floating point.
func about(_ wait: Duration?, _ expected: Duration) -> Bool {
    guard let wait else { return false }
    return (wait > expected ? wait - expected : expected - wait) <= .microseconds(1)
}

@Suite struct TokenBucketTests {
    @Test func aFullBucketAllowsTheMinutesLimitAtOnceThenRefillsAtItsRate() {
        var bucket = TokenBucket(perMinute: 60, now: .zero)
        for _ in 0..<60 { #expect(bucket.take(1, now: .zero) == nil) }
        // Empty: one more needs one second at one a second.
        #expect(about(bucket.take(1, now: .zero), .seconds(1)))
        #expect(about(bucket.take(1, now: .milliseconds(500)), .milliseconds(500)))
        #expect(bucket.take(1, now: .seconds(1)) == nil)
    }

    @Test func anAmountLargerThanTheCapacityNeedsAFullBucketAndLeavesADebt() {
        var bucket = TokenBucket(perMinute: 600, now: .zero)
        #expect(bucket.take(1_000, now: .zero) == nil)
        #expect(bucket.level == -400)
        // The debt is paid first: 400 + 1 tokens at 10 a second.
        #expect(about(bucket.take(1, now: .zero), .milliseconds(40_100)))
    }

    @Test func adjustingGivesBackUpToTheCapacityOrTakesMore() {
        var bucket = TokenBucket(perMinute: 100, now: .zero)
        #expect(bucket.take(80, now: .zero) == nil)
        bucket.adjust(by: 50, now: .zero)
        #expect(bucket.level == 70)
        bucket.adjust(by: 500, now: .zero)
        #expect(bucket.level == 100)
        bucket.adjust(by: -130, now: .zero)
        #expect(bucket.level == -30)
    }

    @Test func resizingKeepsTheLevelWithinTheNewCapacity() {
        var bucket = TokenBucket(perMinute: 120, now: .zero)
        bucket.resize(perMinute: 40, now: .zero)
        #expect(bucket.capacity == 40 && bucket.level == 40)
        #expect(bucket.take(40, now: .zero) == nil)
        // 40 a minute: one token every 1.5 s.
        #expect(about(bucket.take(1, now: .zero), .milliseconds(1_500)))
    }

    @Test func aDebtIsAtMostAMinutesBudgetAndEveryWaitCountsWithoutOverflow() {
        var bucket = TokenBucket(perMinute: 60, now: .zero)
        #expect(bucket.take(1e17, now: .zero) == nil)
        #expect(bucket.level == -60)
        bucket.adjust(by: -1e300, now: .zero)
        bucket.adjust(by: .nan, now: .zero)
        #expect(bucket.level == -60)
        let refused = bucket.take(1, now: .zero)
        #expect(refused == .seconds(61))
        #expect(bucket.wait(until: 1e300) == .seconds(3_600))
    }
}
