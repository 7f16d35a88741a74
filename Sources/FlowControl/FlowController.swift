/// A request as flow control knows it, from admission to its end.
public struct FlowTicket: Sendable, Equatable {
    public var id: UInt64
    public var tenant: Int
    /// Its class (0 highest): the tenant's, or lower when the request asked for less.
    public var classRank: Int
    /// Prompt tokens plus the completion it may ask for, until its usage is known.
    public var estimatedTokens: Int
    /// The engines that can serve it (its model): it waits behind requests of the same pool only.
    public var pool: String
    /// When it first waited, if it did: its place in the queue and its time to live count from here.
    public var enqueued: Duration?
    /// Whether its tenant's limits admitted it: `finished` settles only admitted tickets.
    public var admitted = false
    /// Whether its estimate was charged to its tenant's fair share (it was sent to an engine).
    public var served = false
    /// Whether its tenant's limits were charged to the leader's lease (else this gateway's own
    /// buckets): it settles where it was charged.
    public var chargedToLease = false

    public init(id: UInt64, tenant: Int, classRank: Int, estimatedTokens: Int, pool: String = "") {
        self.id = id
        self.pool = pool
        self.tenant = tenant
        self.classRank = classRank
        self.estimatedTokens = estimatedTokens
    }
}

/// What became of an arriving request.
public enum FlowArrival: Sendable, Equatable {
    /// Nothing waiting goes before it: ask the scheduler now.
    case proceed
    /// It waits its turn in the queue.
    case queued
    /// A tenant limit refuses it (429, `Retry-After` the time until the budget allows it).
    case refused(LimitRefusal, retryAfter: Duration)
    /// The queue is full and this request is the one to shed (429).
    case shed
    /// Its tenant's lease from the leader cannot cover it: ask the leader (`leaseAsks`), apply
    /// the answer (`applyGrants` or `leaseFailed`), then arrive again without asking.
    case askLeader
}

/// Flow control at one gateway: per-tenant limits at admission, the fair, banded queue, and the
/// fair-share accounting as requests are served and end. Pure: the shell holds it behind a lock,
/// feeds it requests and time, and carries out what it returns (answer, wake, shed).
public struct FlowController: Sendable {
    public let configuration: FlowConfiguration
    public private(set) var ledgers: [TenantLedger]
    public private(set) var queue: FairQueue
    /// Whether limits are spent from the leader's leases (the leader answers lease asks) or from
    /// this gateway's own buckets at its share (it does not, or cluster budgets are off).
    public private(set) var usesLeases: Bool
    /// Gateways sharing the budgets, as the leader last counted them.
    public private(set) var gateways = 1
    /// The requests `next` took off the queue to ask the scheduler, by id, until they rejoin
    /// (`wait`), leave, are served or end. They still wait for an engine with room, so the waiting
    /// counts include them (a gauge of the queue alone dipped by one each time the first waiting
    /// request asked again, several times a second while every engine is busy), and a newcomer
    /// they would have gone before does not pass them while they ask.
    public private(set) var asking: [UInt64: FairQueue.Entry] = [:]

    /// Requests waiting for an engine: in the queue, or taken off it to ask the scheduler.
    public var waitingCount: Int { queue.count + asking.count }

    /// `waitingCount` by tenant.
    public var waitingByTenant: [Int] {
        var counts = queue.waitingByTenant
        for entry in asking.values { counts[entry.tenant] += 1 }
        return counts
    }

    public init(configuration: FlowConfiguration, now: Duration) {
        self.configuration = configuration
        usesLeases = configuration.clusterBudgets
        ledgers = configuration.tenants.map { TenantLedger(policy: $0, now: now) }
        queue = FairQueue(classes: configuration.classes, weights: configuration.tenants.map(\.weight), capacity: configuration.queueCapacity)
    }

    /// A request arrives: refused by a limit, sent on, or queued behind those that go first.
    /// `shed`: the id of a waiting request dropped to make room, to be answered 429. Every ticket
    /// that is not refused must be `finished` once, however it ends.
    public mutating func arrive(_ ticket: inout FlowTicket, now: Duration, mayAsk: Bool = true) -> (FlowArrival, shed: UInt64?) {
        if usesLeases {
            switch ledgers[ticket.tenant].admitLeased(estimatedTokens: ticket.estimatedTokens, now: now, mayAsk: mayAsk) {
            case .admitted: ticket.chargedToLease = true
            case .admittedByShare: break
            case .askLeader: return (.askLeader, nil)
            case .refused(let refusal, let wait): return (.refused(refusal, retryAfter: wait), nil)
            }
        } else if let (refusal, wait) = ledgers[ticket.tenant].admit(estimatedTokens: ticket.estimatedTokens, now: now) {
            return (.refused(refusal, retryAfter: wait), nil)
        }
        ticket.admitted = true
        guard queue.hasAnythingAhead(ofTenant: ticket.tenant, classRank: ticket.classRank, pool: ticket.pool, now: now, outside: asking.values)
        else {
            return (.proceed, nil)
        }
        switch wait(&ticket, now: now) {
        case .some(let shed) where shed == ticket.id: return (.shed, nil)
        case .some(let shed): return (.queued, shed)
        case .none: return (.queued, nil)
        }
    }

    /// The scheduler said wait (every engine is busy for this class): the request joins the queue,
    /// at its first place if it waited before in this stay (`ticket.enqueued`). Returns the id of
    /// the request shed to make room, which is `ticket`'s own when it is the one.
    public mutating func wait(_ ticket: inout FlowTicket, now: Duration) -> UInt64? {
        asking[ticket.id] = nil
        let enqueued = ticket.enqueued ?? now
        ticket.enqueued = enqueued
        let entry = FairQueue.Entry(
            id: ticket.id, tenant: ticket.tenant, classRank: ticket.classRank, enqueued: enqueued, cost: Double(ticket.estimatedTokens),
            pool: ticket.pool)
        switch queue.join(entry, now: now) {
        case .queued: return nil
        case .rejected: return ticket.id
        case .queuedShedding(let victim): return victim.id
        }
    }

    /// The next waiting request of `pool` (nil: any) to ask the scheduler, taken off the queue.
    /// It rejoins with `wait` if told to wait again.
    public mutating func next(now: Duration, pool: String? = nil) -> UInt64? {
        guard let entry = queue.next(now: now, pool: pool) else { return nil }
        asking[entry.id] = entry
        return entry.id
    }

    /// A request `next` returned will not ask after all (nobody was left to wake).
    public mutating func forget(_ id: UInt64) {
        asking[id] = nil
    }

    /// The scheduler holds a woken request until a prompt prefix it shares is being computed: it
    /// has had its turn and waits for the cache, not for an engine with room, so newcomers no
    /// longer queue behind it (nor does it count as waiting). Told to wait after the hold, it
    /// rejoins at its first place (`wait`). True when it was asking: the wake it took (room the
    /// leader signalled, unused while it is held) is the next one's, and its send after the hold
    /// passes nothing on.
    @discardableResult
    public mutating func held(_ id: UInt64) -> Bool {
        asking.removeValue(forKey: id) != nil
    }

    /// The request leaves the queue: it is being sent (`served` follows) or ends (`finished`
    /// follows). A woken one stays among those asking until then, so that exactly one of the two
    /// passes its wake on.
    public mutating func leave(_ ticket: FlowTicket) {
        queue.remove(ticket.id, tenant: ticket.tenant, classRank: ticket.classRank, pool: ticket.pool)
    }

    /// The request was sent to an engine: its estimate counts toward its tenant's fair share.
    /// True when it was asking (the waiting counts changed).
    @discardableResult
    public mutating func served(_ ticket: inout FlowTicket) -> Bool {
        let wasAsking = asking.removeValue(forKey: ticket.id) != nil
        guard !ticket.served else { return wasAsking }
        ticket.served = true
        queue.charge(tenant: ticket.tenant, tokens: Double(ticket.estimatedTokens))
        return wasAsking
    }

    /// The request ended, having used `usedTokens` (nil: unknown). One that never reached an
    /// engine gives back its request and its tokens; one that did is settled at its real usage.
    /// True when it ended while woken to ask: newcomers it went before queued behind it, so the
    /// wake (a slot the leader said was free) passes to the next waiting request of its pool.
    @discardableResult
    public mutating func finished(_ ticket: FlowTicket, usedTokens: Int?, now: Duration) -> Bool {
        let wasAsking = asking.removeValue(forKey: ticket.id) != nil
        queue.remove(ticket.id, tenant: ticket.tenant, classRank: ticket.classRank, pool: ticket.pool)
        guard ticket.admitted else { return wasAsking }
        ledgers[ticket.tenant].settle(
            estimatedTokens: ticket.estimatedTokens, usedTokens: ticket.served ? usedTokens : 0, reachedEngine: ticket.served,
            toLease: ticket.chargedToLease, now: now)
        if ticket.served, let used = usedTokens { queue.charge(tenant: ticket.tenant, tokens: Double(used - ticket.estimatedTokens)) }
        return wasAsking
    }

    /// Sets this gateway's share of every tenant's limits.
    public mutating func setShare(_ share: Double, now: Duration) {
        for index in ledgers.indices { ledgers[index].setShare(share, now: now) }
    }

    // MARK: - Cluster-wide budgets

    /// The asks of the next lease call: for `needs` (tenant → the estimated tokens of a request
    /// waiting for it) and, when `renewing`, every tenant that holds a lease or saw requests.
    public mutating func leaseAsks(needs: [Int: Int], renewing: Bool, now: Duration) -> [(tenant: Int, ask: ClusterBudgets.Ask)] {
        var asks: [(Int, ClusterBudgets.Ask)] = []
        for index in ledgers.indices where needs[index] != nil || renewing {
            if let ask = ledgers[index].leaseAsk(need: needs[index], now: now) { asks.append((index, ask)) }
        }
        return asks
    }

    /// The leader answered: its grants (one per ask, in order) last until `expires`, and
    /// `gateways` share the budgets. Leases are in use again.
    public mutating func applyGrants(_ grants: [(tenant: Int, grant: ClusterBudgets.Grant)], gateways: Int, expires: Duration, now: Duration) {
        guard configuration.clusterBudgets else { return }
        for (tenant, grant) in grants where ledgers.indices.contains(tenant) {
            ledgers[tenant].applyGrant(grant, expires: expires, now: now)
        }
        usesLeases = configuration.clusterBudgets
        if gateways != self.gateways, gateways > 0 {
            self.gateways = gateways
            setShare(1 / Double(gateways), now: now)
        }
    }

    /// The leader did not answer the asks of `tenants`: until it does, each limit is this
    /// gateway's share (the limit divided by the gateways last counted).
    public mutating func leaseFailed(tenants: [Int]) {
        for tenant in tenants where ledgers.indices.contains(tenant) { ledgers[tenant].leaseFailed() }
        usesLeases = false
    }
}
