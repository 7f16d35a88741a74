/// A budget that refills at `ratePerSecond` up to `capacity`: a per-minute limit L is a bucket of
/// capacity L refilling at L / 60 a second, so a tenant idle for a minute may send L at once and a
/// busy one gets L a minute. The level may go below zero when a request's estimate is corrected
/// upwards at its end; the debt is paid before anything else is taken. A debt is at most one
/// minute's budget (`floor`): a request estimated at 10^17 tokens, or a peer's report of such a
/// debt, cannot shut a tenant out for ever, nor make a wait too long to count. Pure: time is a
/// value.
public struct TokenBucket: Sendable, Equatable {
    public private(set) var capacity: Double
    public private(set) var ratePerSecond: Double
    public private(set) var level: Double
    private var updated: Duration

    public init(perMinute limit: Double, now: Duration) {
        capacity = max(0, limit)
        ratePerSecond = capacity / 60
        level = capacity
        updated = now
    }

    /// The level now, after refilling.
    public mutating func available(now: Duration) -> Double {
        refill(now)
        return level
    }

    /// Takes `amount` whatever the level, but leaves it no lower than zero (spending elsewhere,
    /// mirrored here so that a switch to this bucket does not start with credit already spent).
    public mutating func drain(_ amount: Double, now: Duration) {
        refill(now)
        level = min(level, max(0, level - amount))
    }

    /// How long until the level reaches `amount` (zero if it has).
    public func wait(until amount: Double) -> Duration {
        level >= amount ? .zero : wait(for: amount)
    }

    /// Takes `amount` if the level reaches it (an amount larger than the capacity needs a full
    /// bucket, and leaves a debt); otherwise takes nothing and says how long until it would.
    public mutating func take(_ amount: Double, now: Duration) -> Duration? {
        refill(now)
        let needed = min(amount, capacity)
        guard level >= needed else { return wait(for: needed) }
        level = max(floor, level - amount)
        return nil
    }

    /// The deepest the level goes: one minute's budget in debt.
    private var floor: Double { -capacity }

    /// Puts back (positive) or takes more (negative) after the fact, as a request's real usage
    /// corrects its estimate. Never above the capacity.
    public mutating func adjust(by amount: Double, now: Duration) {
        refill(now)
        guard amount.isFinite else { return }
        level = min(capacity, max(floor, level + amount))
    }

    /// Changes the limit (a new share of a cluster-wide budget), keeping the level within it.
    public mutating func resize(perMinute limit: Double, now: Duration) {
        refill(now)
        capacity = max(0, limit)
        ratePerSecond = capacity / 60
        level = min(capacity, max(floor, level))
    }

    private mutating func refill(_ now: Duration) {
        guard now > updated else { return }
        let seconds = Double((now - updated) / .nanoseconds(1)) / 1e9
        level = min(capacity, level + seconds * ratePerSecond)
        updated = now
    }

    /// At most an hour: with the level at least `floor` and `needed` at most the capacity, the
    /// wait is at most two minutes, but a `wait(until:)` may ask for more than the capacity.
    private func wait(for needed: Double) -> Duration {
        guard ratePerSecond > 0 else { return .seconds(60) }
        let seconds = min(3_600, (needed - level) / ratePerSecond)
        return .nanoseconds(Int64((seconds * 1e9).rounded(.up)))
    }
}
