import Synchronization

/// Moves a value that is not `Sendable` (an engine answer's body iterator) from the task that
/// opened the answer to the one that relays it. Taking empties it, so only one task ever holds
/// the value; the Mutex makes the move itself safe.
final class Handover<Value>: Sendable {
    private let slot: Mutex<Value?>

    init(_ value: consuming sending Value) { slot = Mutex(.some(value)) }

    func take() -> sending Value? { slot.withLock { $0.take() } }
}
