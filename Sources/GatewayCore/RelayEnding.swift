import Synchronization

/// Ends a relayed request exactly once. Normally when its body has been relayed; but a server may
/// drop a response body without ever running it (the client left before the first write), and
/// then the request must still leave the in-flight gauge and the scheduler's count: that happens
/// when the last reference to the body, and so to this, goes.
public final class RelayEnding: Sendable {
    private let pending = Mutex(true)
    private let end: @Sendable (_ relayed: Bool) -> Void

    public init(_ end: @escaping @Sendable (_ relayed: Bool) -> Void) { self.end = end }

    /// The body ran to its end (whatever the outcome it reported itself).
    public func relayed() { if take() { end(true) } }

    deinit { if take() { end(false) } }

    private func take() -> Bool { pending.withLock { was in defer { was = false }; return was } }
}
