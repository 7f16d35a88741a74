import NIOCore
import Synchronization

/// Requests the scheduler told to wait because every engine is saturated (the seed's
/// `max_queue_size`): bounded, first in first out. A capacity signal wakes the oldest waiting
/// turns, each on its own request's event loop; the request's lifecycle also asks again when its
/// try period passes, so a lost signal costs at most one period.
final class PendingQueue: Sendable {
    let limit: Int
    private let state = Mutex(State())

    private struct Turn {
        var id: UInt64
        var loop: any EventLoop
        var wake: @Sendable () -> Void
    }

    private struct State {
        var taken = 0
        var nextID: UInt64 = 0
        /// Waiting turns, oldest first.
        var turns: [Turn] = []
    }

    init(limit: Int) { self.limit = limit }

    var waiting: Int { state.withLock { $0.taken } }

    /// Takes a place in the queue; false when it is full.
    func admit() -> Bool {
        state.withLock { state in
            guard state.taken < limit else { return false }
            state.taken += 1
            return true
        }
    }

    func leave() { state.withLock { $0.taken -= 1 } }

    /// Waits for the next capacity signal: `wake` runs on `loop` when it reaches this turn.
    /// Returns the turn's id, for `forget`.
    func awaitTurn(on loop: any EventLoop, wake: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            defer { state.nextID += 1 }
            state.turns.append(Turn(id: state.nextID, loop: loop, wake: wake))
            return state.nextID
        }
    }

    /// Drops a turn that no longer waits (its request asked again, or ended).
    func forget(_ id: UInt64) {
        state.withLock { state in state.turns.removeAll { $0.id == id } }
    }

    /// Wakes the oldest `slots` waiting turns (at least one).
    func signal(slots: Int) {
        let woken = state.withLock { state -> [Turn] in
            let count = min(max(1, slots), state.turns.count)
            defer { state.turns.removeFirst(count) }
            return Array(state.turns.prefix(count))
        }
        for turn in woken { turn.loop.execute(turn.wake) }
    }
}
