import Synchronization

/// The hand-off counters /metrics shows for each role: on a decode instance the requests waiting
/// for their KV and what arrived; a prefill instance's pending hand-offs live in its ledger.
final class HandoffStats: Sendable {
    let awaitingKV = Atomic<Int>(0)
    let receivedBlocks = Atomic<Int>(0)
    let transfers = Atomic<Int>(0)
    let transferMicroseconds = Atomic<Int>(0)
    let fetchFailures = Atomic<Int>(0)
    /// Prompts computed here for a decode instance (prefill legs answered).
    let prefilledForDecode = Atomic<Int>(0)
}
