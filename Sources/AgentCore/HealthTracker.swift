/// The engine's health from its `/health` probes and scrapes: a run of failures makes it
/// unhealthy (it answers, but not 200) or unreachable (it does not answer at all); a refused
/// connection (nothing listens: the engine is gone) makes it unreachable at once; one success
/// makes it healthy again.
public struct HealthTracker: Sendable {
    public enum Health: Sendable, Equatable { case unknown, healthy, unhealthy, unreachable }
    public enum Probe: Sendable, Equatable { case ok, failed, unreachable, refused }

    public let failureThreshold: Int
    public private(set) var health: Health = .unknown
    public private(set) var consecutiveFailures = 0

    public init(failureThreshold: Int) { self.failureThreshold = max(1, failureThreshold) }

    /// Records a probe; returns true when the health changed.
    public mutating func record(_ probe: Probe) -> Bool {
        let before = health
        switch probe {
        case .ok:
            consecutiveFailures = 0
            health = .healthy
        case .refused:
            consecutiveFailures += 1
            health = .unreachable
        case .failed, .unreachable:
            consecutiveFailures += 1
            if consecutiveFailures >= failureThreshold {
                health = probe == .unreachable ? .unreachable : .unhealthy
            }
        }
        return health != before
    }
}
