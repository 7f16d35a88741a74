/// The leader's grants to send a conversation's next turn straight to the instance it chose for
/// this one, without asking it again (prefix-cache's `reuse_ms`). With every turn asking, a busy
/// machine adds the leader's round trip to every request's time to first token, although the
/// leader sends most continuations where their conversation already is (its cached prefix makes
/// that instance the cheapest by far).
///
/// A grant is keyed by the last prefix hash of the request it was given for. A later request
/// uses it only if its own chain runs through that hash at the same position and it extends that
/// request's prompt (the conversation's next turn: for chat, the granted chain ends before this
/// request's last answer), the grant covers at least half of its chain,
/// it has not expired, and it is for the same model. Each grant serves one request: requests
/// that share a prefix and come together (several users of one long prompt, `n` copies) ask the
/// leader, which spreads them. The leader decides every grant: it answers the request that used
/// one with a grant for that request's own chain only if it would have chosen the same
/// instance itself (`SchedulerNode`), so a conversation whose instance has become the wrong
/// place asks again from its next turn on.
///
/// Pure: time is a value; bounded to `capacity` grants (the oldest go first).
public struct ReuseGrants: Sendable {
    public struct Grant: Sendable, Equatable {
        public var instance: InstanceRef
        /// How many prefix chunks the request it was granted for had.
        public var chunks: Int
        public var until: Moment
    }

    public let capacity: Int
    private var grants: [UInt64: Stored] = [:]
    /// Insertion order, for eviction; an entry whose grant was replaced or used since is skipped.
    private var order: [(key: UInt64, serial: UInt64)] = []
    private var orderStart = 0
    private var serial: UInt64 = 0

    private struct Stored: Sendable {
        var grant: Grant
        var serial: UInt64
    }

    public init(capacity: Int = 65_536) {
        self.capacity = max(1, capacity)
    }

    public var count: Int { grants.count }

    /// The leader granted `chain`'s request reuse of `instance` for `duration` from `now`.
    public mutating func grant(chain: [UInt64], instance: InstanceRef, for duration: Duration, now: Moment) {
        guard let last = chain.last, duration > .zero else { return }
        serial &+= 1
        grants[last] = Stored(grant: Grant(instance: instance, chunks: chain.count, until: now + duration), serial: serial)
        order.append((last, serial))
        while grants.count > capacity { evictOldest() }
        compactOrder()
    }

    /// The grant `chain`'s request may use, taken (it serves one request), or nil: ask the
    /// leader. `answerChunks`: where a chat request's last assistant message lies (the chunk
    /// its header starts in, onwards); its prompt before that is the previous turn's, so no
    /// grant lies past that chunk.
    /// `isUsable`: whether the instance may take requests now (up in the gateway's table).
    public mutating func take(
        chain: [UInt64], model: String, answerChunks: Range<Int>?, now: Moment, isUsable: (InstanceRef) -> Bool
    ) -> Grant? {
        guard !grants.isEmpty, !chain.isEmpty else { return nil }
        // Chat: the granted prompt ends where this request's last answer begins (the previous
        // turn's prompt, then its answer); its chain may be the whole of this one's when the new
        // text fills no chunk. Otherwise the request must go on past the granted chain by a
        // chunk at least, so a prompt sent again unchanged asks the leader as it did the first time.
        let highest = answerChunks.map { min(chain.count - 1, $0.lowerBound) } ?? chain.count - 2
        // A grant must cover at least half of the request's chunks.
        let lowest = (chain.count - 1) / 2
        guard highest >= lowest else { return nil }
        for index in stride(from: highest, through: lowest, by: -1) {
            guard let stored = grants[chain[index]] else { continue }
            let grant = stored.grant
            guard grant.chunks == index + 1 else { continue }
            grants[chain[index]] = nil
            guard grant.until > now, grant.instance.model == model, isUsable(grant.instance) else { return nil }
            return grant
        }
        return nil
    }

    /// Forgets every grant for `instance` (it went down or left the table).
    public mutating func revoke(instance id: String) {
        grants = grants.filter { $0.value.grant.instance.id != id }
    }

    private mutating func evictOldest() {
        while orderStart < order.count {
            let (key, serial) = order[orderStart]
            orderStart += 1
            if grants[key]?.serial == serial {
                grants[key] = nil
                return
            }
        }
    }

    /// Drops the consumed front of `order` once it is most of the array, and entries whose
    /// grants are gone, so the array stays within a small multiple of `capacity`.
    private mutating func compactOrder() {
        guard order.count > 2 * capacity + 1_024 else { return }
        order = order[orderStart...].filter { grants[$0.key]?.serial == $0.serial }
        orderStart = 0
    }
}
