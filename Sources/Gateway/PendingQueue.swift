/// Requests the scheduler told to wait because every engine is saturated (the seed's
/// `max_queue_size`): bounded, first in first out. A waiting request asks again when a capacity
/// signal reaches its turn or when its try period passes, whichever is first.
actor PendingQueue {
    let limit: Int
    private(set) var waiting = 0
    private var turns: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    private var nextID: UInt64 = 0

    init(limit: Int) { self.limit = limit }

    /// Takes a place in the queue; false when it is full.
    func admit() -> Bool {
        guard waiting < limit else { return false }
        waiting += 1
        return true
    }

    func leave() { waiting -= 1 }

    /// Returns when a capacity signal reaches this request or after `period`.
    func waitForTurn(period: Duration) async {
        let id = nextID
        nextID += 1
        await withTaskGroup { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await self.enqueueTurn(id)
                } onCancel: {
                    Task { await self.release(id) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: period)
                await self.release(id)
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Wakes the oldest `slots` waiting requests.
    func signal(slots: Int) {
        for _ in 0..<min(max(1, slots), turns.count) { turns.removeFirst().continuation.resume() }
    }

    private func enqueueTurn(_ id: UInt64) async {
        // Cancelled before it got here (its timer already fired): its release found nothing to
        // wake, so it must not start waiting.
        guard !Task.isCancelled else { return }
        await withCheckedContinuation { turns.append((id, $0)) }
    }

    private func release(_ id: UInt64) {
        guard let index = turns.firstIndex(where: { $0.id == id }) else { return }
        turns.remove(at: index).continuation.resume()
    }
}
