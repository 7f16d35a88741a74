import FlowControl
import NIOCore
import Synchronization

/// The shell of flow control: one `FlowController` behind a lock, shared by every event loop,
/// carrying each wake-up it decides to the waiting request on that request's own loop. Waiting
/// requests are woken in the controller's order, within the pool (model) that has room: as many
/// as a capacity signal from the leader frees; then, each time a woken request is sent to an
/// engine, the next of its pool (there was room; the chain stops at the first told to wait,
/// whose wait asks the leader for the next signal); and the first of any pool each try period in
/// which nothing was woken (a lost signal costs at most a period). A woken request told to wait
/// again goes back to its place; one that ends before it is sent passes its wake on.
final class FlowGate: Sendable {
    enum Wake: Sendable {
        /// Ask the scheduler now.
        case turn
        /// The full queue dropped it for a request that goes first.
        case shed
    }

    private struct Waiter {
        var loop: any EventLoop
        var wake: @Sendable (Wake) -> Void
    }

    private struct State {
        var controller: FlowController
        var waiters: [UInt64: Waiter] = [:]
        /// When a request was last woken: the try period counts from here.
        var lastWake: Duration = .zero
        /// The waiting counts last set on the gauges, by tenant.
        var published: [Int]
    }

    let configuration: FlowConfiguration
    private let state: Mutex<State>
    private let metrics: GatewayMetrics
    private let clock: @Sendable () -> Duration

    init(configuration: FlowConfiguration, metrics: GatewayMetrics, clock: @escaping @Sendable () -> Duration) {
        self.configuration = configuration
        self.metrics = metrics
        self.clock = clock
        state = Mutex(
            State(
                controller: FlowController(configuration: configuration, now: clock()),
                published: Array(repeating: 0, count: configuration.tenants.count)))
        for tenant in configuration.tenants { metrics.tenantQueued(tenant: tenant.name, waiting: 0) }
    }

    func tenantName(_ ticket: FlowTicket) -> String { configuration.tenants[ticket.tenant].name }
    func className(_ rank: Int) -> String { configuration.classes[rank].name }

    var now: Duration { clock() }

    /// A request arrives; if it waits, `wake` is how it is woken. `mayAsk`: false when it arrives
    /// again after its tenant's lease was asked for (`askLeader`).
    func arrive(_ ticket: inout FlowTicket, mayAsk: Bool = true, on loop: any EventLoop, wake: @escaping @Sendable (Wake) -> Void) -> FlowArrival {
        let now = clock()
        let (arrival, shed) = state.withLock { state -> (FlowArrival, Waiter?) in
            let (arrival, shed) = state.controller.arrive(&ticket, now: now, mayAsk: mayAsk)
            if arrival == .queued { state.waiters[ticket.id] = Waiter(loop: loop, wake: wake) }
            return (arrival, shed.flatMap { state.waiters.removeValue(forKey: $0) })
        }
        shed.map { waiter in waiter.loop.execute { waiter.wake(.shed) } }
        if arrival == .queued || shed != nil { publishWaiting() }
        let outcome: String? =
            switch arrival {
            case .proceed, .queued: "admitted"
            case .refused(let refusal, _): "refused_\(refusal.kind)"
            case .shed, .askLeader: nil  // counted when it is answered, or when it arrives again
            }
        if let outcome { metrics.tenantRequest(tenant: tenantName(ticket), class: className(ticket.classRank), outcome: outcome) }
        return arrival
    }

    /// The scheduler said wait: back into the queue at its first place. False when it is the one
    /// shed to make room (another shed one is woken with `shed`).
    func wait(_ ticket: inout FlowTicket, on loop: any EventLoop, wake: @escaping @Sendable (Wake) -> Void) -> Bool {
        let now = clock()
        let (shedSelf, shed) = state.withLock { state -> (Bool, Waiter?) in
            let shed = state.controller.wait(&ticket, now: now)
            if shed == ticket.id { return (true, nil) }
            state.waiters[ticket.id] = Waiter(loop: loop, wake: wake)
            return (false, shed.flatMap { state.waiters.removeValue(forKey: $0) })
        }
        shed.map { waiter in waiter.loop.execute { waiter.wake(.shed) } }
        publishWaiting()
        return !shedSelf
    }

    /// The request leaves the queue: it is being sent (`served` follows) or ends (`finished`).
    func leave(_ ticket: FlowTicket) {
        state.withLock { state in
            state.controller.leave(ticket)
            state.waiters[ticket.id] = nil
        }
        publishWaiting()
    }

    /// The scheduler holds the woken request for a warming prefix: newcomers stop queueing behind
    /// it, and the room it was woken for goes to the next of its pool. Its send after the hold
    /// passes nothing on (the caller no longer counts it as woken).
    func held(_ ticket: FlowTicket) {
        let now = clock()
        let pool = ticket.pool
        let woken = state.withLock { state -> [Waiter] in
            state.controller.held(ticket.id) ? Self.wakeNext(1, pool: pool, &state, now: now) : []
        }
        deliver(woken)
        publishWaiting()
    }

    /// The request was sent to an engine. If the queue woke it for this, there was room: wake the
    /// next of its pool.
    func served(_ ticket: inout FlowTicket, wasWoken: Bool) {
        let now = clock()
        let first = !ticket.served
        let pool = ticket.pool
        let (wasAsking, woken) = state.withLock { state -> (Bool, [Waiter]) in
            let wasAsking = state.controller.served(&ticket)
            return (wasAsking, wasWoken ? Self.wakeNext(1, pool: pool, &state, now: now) : [])
        }
        deliver(woken)
        // `deliver` publishes when it wakes anyone; a woken request sent changed the counts too.
        if wasAsking && woken.isEmpty { publishWaiting() }
        if first { metrics.tenantQueueWait(tenant: tenantName(ticket), seconds: ticket.enqueued.map { (now - $0) / .seconds(1) } ?? 0) }
    }

    /// The request ended (however): its limits are settled with the tokens it used.
    func finished(_ ticket: FlowTicket, usedTokens: Int?) {
        let now = clock()
        let pool = ticket.pool
        let (wasAsking, woken) = state.withLock { state -> (Bool, [Waiter]) in
            state.waiters[ticket.id] = nil
            guard state.controller.finished(ticket, usedTokens: usedTokens, now: now) else { return (false, []) }
            return (true, Self.wakeNext(1, pool: pool, &state, now: now))
        }
        deliver(woken)
        // Only an end while asking changes the waiting counts here (one in the queue left it first).
        if wasAsking { publishWaiting() }
    }

    /// A capacity signal for `model`'s engines: wake as many of its waiting requests as it frees,
    /// first first.
    func signal(slots: Int, model: String) {
        let now = clock()
        deliver(state.withLock { state in Self.wakeNext(max(1, slots), pool: model, &state, now: now) })
    }

    /// Every try period: if nothing was woken for a whole period while requests wait, wake the
    /// first (a capacity signal may have been lost).
    func tick(period: Duration) {
        let now = clock()
        deliver(
            state.withLock { state in
                guard state.controller.queue.count > 0, now - state.lastWake >= period else { return [] }
                return Self.wakeNext(1, pool: nil, &state, now: now)
            })
    }

    // MARK: - Cluster-wide budgets (`LeaseKeeper` calls the leader)

    /// Whether requests spend the leader's leases now (false: this gateway's share).
    var usesLeases: Bool { state.withLock { $0.controller.usesLeases } }

    func leaseAsks(needs: [Int: Int], renewing: Bool) -> [(tenant: Int, ask: ClusterBudgets.Ask)] {
        let now = clock()
        return state.withLock { $0.controller.leaseAsks(needs: needs, renewing: renewing, now: now) }
    }

    func applyGrants(_ grants: [(tenant: Int, grant: ClusterBudgets.Grant)], gateways: Int, expires: Duration) {
        let now = clock()
        state.withLock { $0.controller.applyGrants(grants, gateways: gateways, expires: expires, now: now) }
    }

    func leaseFailed(tenants: [Int]) {
        state.withLock { $0.controller.leaseFailed(tenants: tenants) }
    }

    // MARK: - Waking

    private static func wakeNext(_ count: Int, pool: String?, _ state: inout State, now: Duration) -> [Waiter] {
        var woken: [Waiter] = []
        while woken.count < count, let id = state.controller.next(now: now, pool: pool) {
            // No waiter: the request ended as it was taken; nothing to wake.
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.controller.forget(id)
                continue
            }
            woken.append(waiter)
        }
        if !woken.isEmpty { state.lastWake = now }
        return woken
    }

    private func deliver(_ woken: [Waiter]) {
        for waiter in woken { waiter.loop.execute { waiter.wake(.turn) } }
        if !woken.isEmpty { publishWaiting() }
    }

    /// Sets the waiting gauges under the lock, so two threads cannot publish counts out of order:
    /// those of the tenants whose count changed (a shed or woken request may be another tenant's
    /// than the caller's).
    private func publishWaiting() {
        state.withLock { state in
            let waiting = state.controller.waitingByTenant
            for index in waiting.indices where waiting[index] != state.published[index] {
                metrics.tenantQueued(tenant: configuration.tenants[index].name, waiting: waiting[index])
                state.published[index] = waiting[index]
            }
            metrics.pending(state.controller.waitingCount)
        }
    }
}
