/// The gateway's wait queue: requests the engines cannot take yet, served in priority bands and,
/// within a band, fairly between tenants. Pure: time is a value.
///
/// - **Bands.** A request waits in its class's band; the highest band with anything waiting is
///   served first. A class with `agingAfter` climbs one band per period waited, so a lower class
///   is served eventually however busy the higher ones are.
/// - **Fair share within a band** by virtual token counters (VTC, Sheng et al., "Fairness in
///   Serving Large Language Models", OSDI 2024): each tenant's counter grows by the tokens it is
///   served divided by its weight, and the waiting tenant with the smallest counter goes first.
///   A tenant that starts waiting has its counter lifted to the smallest among those already
///   waiting (or to the last served tenant's), so credit cannot be saved up while idle: a tenant
///   sending ten times more gets no more of the engines than one sending enough to keep waiting.
/// - **Shedding.** When full, the request shed is of the lowest class, then of the tenant furthest
///   ahead in service (the largest counter), then the newest; it may be the one arriving.
/// - **Pools.** Each request waits in the pool of the engines that can serve it (its model): one
///   pool's waiters never hold back another's, and a capacity signal for a pool wakes its own.
///   Counters and the queue's capacity are shared by all pools.
public struct FairQueue: Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: UInt64
        /// Index of the tenant (its fair-share counter and weight).
        public var tenant: Int
        /// The class it waits in (0 highest), before aging.
        public var classRank: Int
        /// When it first joined the queue: aging and the time to live count from here, so a request
        /// that is woken and told to wait again keeps its place.
        public var enqueued: Duration
        /// Its estimated tokens, charged to its tenant's counter when it is served.
        public var cost: Double
        /// The engines that can serve it (the model it asks for).
        public var pool: String

        public init(id: UInt64, tenant: Int, classRank: Int, enqueued: Duration, cost: Double, pool: String = "") {
            self.id = id
            self.tenant = tenant
            self.classRank = classRank
            self.enqueued = enqueued
            self.cost = cost
            self.pool = pool
        }
    }

    public enum Joined: Sendable, Equatable {
        case queued
        /// Queued; `shed` was dropped to make room and must be answered.
        case queuedShedding(Entry)
        /// The arriving request is the one shed.
        case rejected
    }

    public let classes: [PriorityClass]
    public let capacity: Int
    private var weights: [Double]
    private var counters: [Double]
    /// The counter of the tenant served last, for a tenant that starts waiting alone.
    private var lastServed: Double = 0
    /// FIFO flows keyed by tenant and class.
    private var flows: [FlowKey: Flow] = [:]
    public private(set) var count = 0
    /// How many of each tenant's requests wait, by tenant index.
    public private(set) var waitingByTenant: [Int]

    private struct FlowKey: Hashable, Sendable {
        var tenant: Int
        var classRank: Int
        var pool: String
    }

    /// A FIFO of entries with a moving head (entries leave mostly from the front).
    private struct Flow: Sendable {
        var entries: [Entry] = []
        var head = 0
        var isEmpty: Bool { head == entries.count }
        var first: Entry? { isEmpty ? nil : entries[head] }
        var last: Entry? { isEmpty ? nil : entries[entries.count - 1] }

        /// In order of first joining: a request that rejoins after being woken takes its old place.
        mutating func insert(_ entry: Entry) {
            var index = entries.count
            while index > head, (entries[index - 1].enqueued, entries[index - 1].id) > (entry.enqueued, entry.id) { index -= 1 }
            entries.insert(entry, at: index)
        }

        mutating func remove(_ id: UInt64) -> Entry? {
            guard let index = entries[head...].firstIndex(where: { $0.id == id }) else { return nil }
            let entry = index == head ? entries[head] : entries.remove(at: index)
            if index == head { head += 1 }
            if head > 32, head * 2 > entries.count {
                entries.removeFirst(head)
                head = 0
            }
            return entry
        }
    }

    /// `weights`: each tenant's weight, by tenant index (at least one tenant).
    public init(classes: [PriorityClass], weights: [Double], capacity: Int) {
        self.classes = classes
        self.capacity = max(0, capacity)
        self.weights = weights.map { $0 > 0 ? $0 : 1 }
        counters = Array(repeating: 0, count: weights.count)
        waitingByTenant = Array(repeating: 0, count: weights.count)
    }

    /// The band an entry is served in at `now`: its class, raised one band per aging period waited.
    public func band(of entry: Entry, now: Duration) -> Int {
        guard entry.classRank < classes.count, let period = classes[entry.classRank].agingAfter, period > .zero else {
            return entry.classRank
        }
        let periods = Int((now - entry.enqueued) / period)
        return max(0, entry.classRank - max(0, periods))
    }

    public func counter(of tenant: Int) -> Double { counters[tenant] }

    public func waiting(tenant: Int) -> Int { waitingByTenant[tenant] }

    private func isWaiting(tenant: Int) -> Bool { waitingByTenant[tenant] > 0 }

    /// The counter a tenant that is not waiting would start waiting with. `outside`: entries off
    /// the queue that still wait (see `hasAnythingAhead`), counted as if they had stayed.
    private func liftedCounter(of tenant: Int, outside: some Sequence<Entry> = [Entry]()) -> Double {
        if isWaiting(tenant: tenant) || outside.contains(where: { $0.tenant == tenant }) { return counters[tenant] }
        let waiting = flows.filter { !$0.value.isEmpty }.map { counters[$0.key.tenant] } + outside.map { counters[$0.tenant] }
        return max(counters[tenant], waiting.min() ?? lastServed)
    }

    /// Whether something waiting in `pool` would be served before a request of `tenant` and
    /// `classRank` arriving now; if not, it may go to the engines without waiting. `outside`:
    /// entries taken off the queue that still wait for an engine (woken to ask the scheduler),
    /// which go before a newcomer as they would had they stayed.
    public func hasAnythingAhead(
        ofTenant tenant: Int, classRank: Int, pool: String = "", now: Duration, outside: some Sequence<Entry> = [Entry]()
    ) -> Bool {
        let counter = liftedCounter(of: tenant, outside: outside)
        func goesFirst(_ head: Entry) -> Bool {
            let band = band(of: head, now: now)
            return band < classRank || (band == classRank && counters[head.tenant] <= counter)
        }
        for (key, flow) in flows where key.pool == pool {
            if let head = flow.first, goesFirst(head) { return true }
        }
        return outside.contains { $0.pool == pool && goesFirst($0) }
    }

    public mutating func join(_ entry: Entry, now: Duration) -> Joined {
        var shed: Entry?
        if count >= capacity {
            guard let victim = sheddingCandidate(), isShedBefore(victim, entry, arrivingCounter: liftedCounter(of: entry.tenant)) else {
                return .rejected
            }
            _ = remove(victim.id, tenant: victim.tenant, classRank: victim.classRank, pool: victim.pool)
            shed = victim
        }
        counters[entry.tenant] = liftedCounter(of: entry.tenant)
        flows[FlowKey(tenant: entry.tenant, classRank: entry.classRank, pool: entry.pool), default: Flow()].insert(entry)
        count += 1
        waitingByTenant[entry.tenant] += 1
        return shed.map { .queuedShedding($0) } ?? .queued
    }

    /// Takes the entry to serve next, of `pool` (nil: any): the highest band, then the smallest
    /// counter, then the oldest.
    public mutating func next(now: Duration, pool: String? = nil) -> Entry? {
        var best: (key: FlowKey, entry: Entry, band: Int)?
        for (key, flow) in flows where pool == nil || key.pool == pool {
            guard let head = flow.first else { continue }
            let band = band(of: head, now: now)
            if let current = best {
                let a = (band, counters[key.tenant]), b = (current.band, counters[current.key.tenant])
                if a > b || (a == b && (head.enqueued, head.id) > (current.entry.enqueued, current.entry.id)) { continue }
            }
            best = (key, head, band)
        }
        guard let best else { return nil }
        return remove(best.entry.id, tenant: best.key.tenant, classRank: best.key.classRank, pool: best.key.pool)
    }

    /// Drops a waiting entry (it ended, or was served another way).
    @discardableResult
    public mutating func remove(_ id: UInt64, tenant: Int, classRank: Int, pool: String = "") -> Entry? {
        let key = FlowKey(tenant: tenant, classRank: classRank, pool: pool)
        guard var flow = flows[key], let entry = flow.remove(id) else { return nil }
        flows[key] = flow.isEmpty ? nil : flow
        count -= 1
        waitingByTenant[tenant] -= 1
        return entry
    }

    /// A tenant was served `tokens` tokens (an estimate when a request starts; the difference
    /// from its real usage when it ends, which may be negative).
    public mutating func charge(tenant: Int, tokens: Double) {
        counters[tenant] = max(0, counters[tenant] + tokens / weights[tenant])
        lastServed = counters[tenant]
    }

    /// Of the entries waiting, the one to shed first: the newest of the lowest class's tenant
    /// furthest ahead.
    private func sheddingCandidate() -> Entry? {
        var worst: (key: FlowKey, entry: Entry)?
        for (key, flow) in flows {
            guard let tail = flow.last else { continue }
            if let current = worst, !isShedBefore(tail, current.entry) { continue }
            worst = (key, tail)
        }
        return worst?.entry
    }

    private func isShedBefore(_ a: Entry, _ b: Entry, arrivingCounter: Double? = nil) -> Bool {
        if a.classRank != b.classRank { return a.classRank > b.classRank }
        let ca = counters[a.tenant], cb = arrivingCounter ?? counters[b.tenant]
        if ca != cb { return ca > cb }
        return (a.enqueued, a.id) > (b.enqueued, b.id)
    }
}
