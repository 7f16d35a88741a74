import Wire

/// The subscriptions a scheduler node serves: gateways watching the instance table, and gateways
/// holding back requests until an instance has room. Each subscriber reads its own AsyncStream;
/// the node publishes into all of them. Tables keep only the newest (a table replaces the one
/// before it); capacity signals keep a few, since each names a different instance.
struct SubscriptionHub: Sendable {
    private var nextID: UInt64 = 1
    private var tables: [UInt64: AsyncStream<InstanceTable>.Continuation] = [:]
    private var capacity: [UInt64: (model: String, continuation: AsyncStream<CapacityAvailable>.Continuation)] = [:]
    /// What the table subscribers last saw: a table is pushed when any of these change.
    private var published: (version: UInt64, leader: UInt64, term: UInt64)?

    var tableSubscribers: Int { tables.count }

    mutating func addTableSubscriber(current: InstanceTable) -> (id: UInt64, tables: AsyncStream<InstanceTable>) {
        // Bring the others up to `current` first, so that every subscriber has seen what
        // `published` says and the newcomer is not sent `current` twice.
        publishIfChanged(current)
        let (stream, continuation) = AsyncStream<InstanceTable>.makeStream(bufferingPolicy: .bufferingNewest(1))
        continuation.yield(current)
        let id = takeID()
        tables[id] = continuation
        return (id, stream)
    }

    mutating func addCapacitySubscriber(model: String) -> (id: UInt64, signals: AsyncStream<CapacityAvailable>) {
        let (stream, continuation) = AsyncStream<CapacityAvailable>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let id = takeID()
        capacity[id] = (model, continuation)
        return (id, stream)
    }

    mutating func remove(_ id: UInt64) {
        tables.removeValue(forKey: id)?.finish()
        capacity.removeValue(forKey: id)?.continuation.finish()
    }

    /// Pushes `table` to every table subscriber if its version, leader or term differ from the last one pushed.
    mutating func publishIfChanged(_ table: InstanceTable) {
        let key = (table.version, table.leaderID, table.term)
        if let published, published == key { return }
        published = key
        for continuation in tables.values { continuation.yield(table) }
    }

    func signalCapacity(_ signal: CapacityAvailable) {
        for subscriber in capacity.values where subscriber.model.isEmpty || subscriber.model == signal.model {
            subscriber.continuation.yield(signal)
        }
    }

    /// Ends every capacity stream: only a leader gives capacity signals.
    mutating func endCapacitySubscriptions() {
        for subscriber in capacity.values { subscriber.continuation.finish() }
        capacity = [:]
    }

    mutating func endAll() {
        endCapacitySubscriptions()
        for continuation in tables.values { continuation.finish() }
        tables = [:]
    }

    private mutating func takeID() -> UInt64 {
        defer { nextID += 1 }
        return nextID
    }
}
