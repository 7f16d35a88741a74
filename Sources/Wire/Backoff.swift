/// Exponential backoff with full jitter (the AWS architecture blog's "full jitter"): the n-th wait is
/// uniform in [0, min(cap, base * 2^n)], so many clients that lost the same server do not return in
/// lockstep. Pure: the caller supplies the random numbers.
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration
    public private(set) var attempt = 0

    public init(base: Duration = .milliseconds(50), cap: Duration = .seconds(5)) {
        precondition(base > .zero && cap >= base, "backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
    }

    /// The ceiling of the next wait, before jitter.
    public var currentCeiling: Duration {
        let shift = min(attempt, 30)
        let ceiling = base * (1 << shift)
        return min(ceiling, cap)
    }

    /// The next wait: uniform in [0, ceiling], using `unit`, a number in [0, 1).
    public mutating func next(unit: Double) -> Duration {
        let ceiling = currentCeiling
        attempt += 1
        let clamped = min(max(unit, 0), 1)
        return ceiling * clamped
    }

    public mutating func next() -> Duration {
        next(unit: Double.random(in: 0..<1))
    }

    public mutating func reset() {
        attempt = 0
    }
}
