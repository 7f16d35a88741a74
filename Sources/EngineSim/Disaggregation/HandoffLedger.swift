/// A prefill instance's computed prompts waiting for their decode instance to fetch the KV:
/// vLLM's blocks held for a remote decode (by request id), SGLang's bootstrap rooms. An entry
/// leaves when fetched or when it expires (the KV would be freed); a decode instance that asks
/// for an SGLang room before the prefill has finished waits for it.
actor HandoffLedger {
    struct Prefilled: Sendable, Equatable {
        var blocks: Int
        var tokens: Int
    }

    private struct Entry {
        var prefilled: Prefilled
        var expires: ContinuousClock.Instant
    }

    private var entries: [String: Entry] = [:]
    private let keepFor: Duration
    private(set) var sentBlocks = 0
    private(set) var expired = 0

    init(keepFor: Duration) { self.keepFor = keepFor }

    static func key(vllmRequest id: String) -> String { "vllm:\(id)" }
    static func key(sglangRoom room: UInt64) -> String { "sglang:\(room)" }

    var pending: Int {
        dropExpired()
        return entries.count
    }

    func publish(_ key: String, _ prefilled: Prefilled) {
        dropExpired()
        entries[key] = Entry(prefilled: prefilled, expires: .now + keepFor)
    }

    /// Takes the entry, waiting up to `wait` for it to be published (polling: a decode instance
    /// asks once per request, and the wait is as long as one prefill).
    func take(_ key: String, wait: Duration) async -> Prefilled? {
        let deadline = ContinuousClock.now + wait
        while true {
            dropExpired()
            if let entry = entries.removeValue(forKey: key) {
                sentBlocks += entry.prefilled.blocks
                return entry.prefilled
            }
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return nil }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    private func dropExpired() {
        let now = ContinuousClock.now
        let before = entries.count
        entries = entries.filter { $0.value.expires > now }
        expired += before - entries.count
    }
}
