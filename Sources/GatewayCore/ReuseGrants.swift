/// The leader's grants to send a conversation's next turn straight to the instance it chose for
/// this one, without asking it again (prefix-cache's `reuse_ms`). With every turn asking, a busy
/// machine adds the leader's round trip to every request's time to first token, although the
/// leader sends most continuations where their conversation already is (its cached prefix makes
/// that instance the cheapest by far).
///
/// A grant is kept under the key of the whole prompt of the chat request it was given for
/// (`RequestFeatures.promptKey`). A later chat request uses it only if the prompt in front of its
/// last assistant message is exactly that prompt (`previousTurnKey`: the conversation's next
/// turn, the same history, then the answer), the granted prompt covers at least half of the
/// request's chunks, the grant has not expired, and it is for the same model. Each grant serves
/// one request: the same turn sent again asks the leader. Other conversations never match, even
/// those that share a system prompt: the key covers the whole text, not the chunks. The leader
/// decides every grant: it answers the request that used one with a grant for that request's own
/// prompt only if it would have chosen the same instance itself (`SchedulerNode`), so a
/// conversation whose instance has become the wrong place asks again from its next turn on.
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

    /// The leader granted the request whose prompt has key `promptKey` (and `chunks` prefix
    /// chunks) reuse of `instance` for `duration` from `now`.
    public mutating func grant(promptKey: UInt64, chunks: Int, instance: InstanceRef, for duration: Duration, now: Moment) {
        guard duration > .zero else { return }
        serial &+= 1
        grants[promptKey] = Stored(grant: Grant(instance: instance, chunks: chunks, until: now + duration), serial: serial)
        order.append((promptKey, serial))
        while grants.count > capacity { evictOldest() }
        compactOrder()
    }

    /// The grant a chat request may use, taken (it serves one request), or nil: ask the leader.
    /// `previousTurnKey`: the key of its prompt in front of its last assistant message;
    /// `chunks`: its own prefix chunks.
    public mutating func take(previousTurnKey: UInt64, chunks: Int, model: String, now: Moment) -> Grant? {
        guard let stored = grants.removeValue(forKey: previousTurnKey) else { return nil }
        let grant = stored.grant
        guard grant.until > now, grant.instance.model == model, grant.chunks * 2 >= chunks else { return nil }
        return grant
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

    /// Drops the consumed front of `order` and entries whose grants are gone once the array is
    /// twice `capacity` (plus a little), so it stays within a small multiple of `capacity`.
    private mutating func compactOrder() {
        guard order.count > 2 * capacity + 1_024 else { return }
        order = order[orderStart...].filter { grants[$0.key]?.serial == $0.serial }
        orderStart = 0
    }
}
