import Synchronization

/// Requests the scheduler told to wait because every engine is saturated (the seed's
/// `max_queue_size`): bounded, first in first out. A waiting request asks again when a capacity
/// signal reaches its turn or when its try period passes, whichever is first.
final class PendingQueue: Sendable {
    let limit: Int
    private let state = Mutex(State())

    private struct State {
        var taken = 0
        var nextID: UInt64 = 0
        /// Waiting turns, oldest first.
        var turns: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// Turns released before they began waiting (their timer or cancellation came first).
        var releasedEarly: Set<UInt64> = []
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

    /// Returns when a capacity signal reaches this request or after `period`.
    func waitForTurn(period: Duration) async {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskGroup { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let begun = self.state.withLock { state -> Bool in
                            if state.releasedEarly.remove(id) != nil { return false }
                            state.turns.append((id, continuation))
                            return true
                        }
                        if !begun { continuation.resume() }
                    }
                } onCancel: {
                    self.release(id)
                }
            }
            group.addTask {
                try? await Task.sleep(for: period)
                self.release(id)
            }
            await group.next()
            group.cancelAll()
        }
        // Both children are done: a release that came after the turn ended leaves nothing behind.
        _ = state.withLock { $0.releasedEarly.remove(id) }
    }

    /// Wakes the oldest `slots` waiting requests.
    func signal(slots: Int) {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            let count = min(max(1, slots), state.turns.count)
            defer { state.turns.removeFirst(count) }
            return state.turns.prefix(count).map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    private func release(_ id: UInt64) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let index = state.turns.firstIndex(where: { $0.id == id }) { return state.turns.remove(at: index).continuation }
            state.releasedEarly.insert(id)
            return nil
        }
        continuation?.resume()
    }
}
