import ClusterConfig
import Foundation
import GatewayCore
import Logging
import NIOCore
import Synchronization
import Wire

/// The gateway's side of the scheduler trio: one connection to the leader per event loop, so a
/// request's `schedule` call and its `finish` go out and come back on the loop the request lives
/// on (no thread hop on the data path); the instance-table and capacity subscriptions; and
/// fallback. When the leader cannot answer within the per-call timeout (plus one redirect) the
/// gateway is in fallback: it routes round-robin over the cached table until a probe finds a
/// leader again. Every transition is logged and counted.
final class SchedulerLink: Sendable {
    let store: InstanceTableStore
    let capacity: AsyncStream<CapacityAvailable>
    /// One client per event loop, each dialling on its own loop.
    private let clients: [(loop: any EventLoop, client: LeaderClient)]
    private let finishes: AsyncStream<FinishRequest>
    private let finishQueue: AsyncStream<FinishRequest>.Continuation
    private let capacityQueue: AsyncStream<CapacityAvailable>.Continuation
    private let callTimeout: Duration
    /// `llm_gateway.pd_handoff`; nil: by the prefill engine's kind.
    private let handoffFlow: HandoffFlow?
    private let logger: Logger
    private let inFallback = Atomic<Bool>(false)
    /// Scheduler id → address, to follow the leader a table names.
    private let members: [UInt64: String]
    private let metrics: GatewayMetrics
    /// The leader's grants to send a conversation's next turn without asking (`reuse_ms`).
    private let grants = Mutex(ReuseGrants())
    /// How many grants `grants` holds, updated under its lock: with grants off (the default) a
    /// request reads this and never takes the lock. A request racing the first grant may read 0
    /// and ask the leader, as it would have without the grant.
    private let grantsHeld = Atomic<Int>(0)
    private let epoch = ContinuousClock.now
    private var now: Moment { .now - epoch }

    init(configuration: GatewayConfiguration, wire: WireConfiguration, loops: [any EventLoop], metrics: GatewayMetrics, logger: Logger) {
        self.metrics = metrics
        let targets = configuration.cluster.members.map { LeaderClient.Target(host: $0.host, port: $0.port) }
        clients = loops.map { loop in (loop, LeaderClient(schedulers: targets, configuration: wire, group: loop, logger: logger)) }
        store = InstanceTableStore(path: configuration.tableCachePath, logger: logger)
        (capacity, capacityQueue) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(64))
        (finishes, finishQueue) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(16_384))
        callTimeout = .milliseconds(configuration.schedulerTimeoutMilliseconds)
        handoffFlow = configuration.handoffFlow
        members = Dictionary(uniqueKeysWithValues: configuration.cluster.members.map { ($0.id, $0.address) })
        self.logger = logger
    }

    var isInFallback: Bool { inFallback.load(ordering: .relaxed) }

    private func client(for loop: any EventLoop) -> LeaderClient {
        clients.first { $0.loop === loop }?.client ?? clients[0].client
    }

    /// Asks the leader where to send a request; the answer comes on `loop`. Never waits longer
    /// than the call timeout plus one more (a redirect, or the next scheduler), so a dead trio
    /// costs each request that much before fallback.
    /// `promptKey`: the key its reuse grant is kept under, when the leader gives one (chat).
    func schedule(_ request: ScheduleRequest, model: String, promptKey: UInt64?, on loop: any EventLoop) -> EventLoopFuture<ScheduleAnswer> {
        // In fallback, requests do not wait for a scheduler that did not answer: a background
        // probe (`probeWhileInFallback`) ends fallback as soon as the leader answers.
        if isInFallback { return loop.makeSucceededFuture(.unavailable("in fallback")) }
        let client = client(for: loop)
        guard let connection = client.liveConnection, connection.channel.eventLoop === loop else {
            return scheduleSlowly(request, model: model, promptKey: promptKey, client: client, on: loop)
        }
        return connection.startCall(.scheduleRequest(request), timeout: callTimeout).flatMap { reply in
            if case .notLeader(let hint) = reply {
                Task { await client.follow(hint) }
                return self.scheduleSlowly(request, model: model, promptKey: promptKey, client: client, on: loop)
            }
            return loop.makeSucceededFuture(self.answer(reply, model: model, promptKey: promptKey, chunks: request.prefixHashes.count))
        }.flatMapError { error in
            if let error = error as? WireError, error.code == .notFound {
                self.leaveFallback()
                return loop.makeSucceededFuture(.noInstance(error.message))
            }
            if let error = error as? WireError, error.code == .timeout, error.peerResponsive {
                return loop.makeSucceededFuture(self.slowAnswer(error))
            }
            // A broken connection, or a scheduler that went silent: the slow path tries the next.
            return self.scheduleSlowly(request, model: model, promptKey: promptKey, client: client, on: loop)
        }
    }

    /// The same call through the leader-following client (redirects, the next scheduler), off the
    /// loop; for a loop whose connection is down or was redirected.
    private func scheduleSlowly(_ request: ScheduleRequest, model: String, promptKey: UInt64?, client: LeaderClient, on loop: any EventLoop)
        -> EventLoopFuture<ScheduleAnswer>
    {
        let promise = loop.makePromise(of: ScheduleAnswer.self)
        let timeout = callTimeout
        Task {
            do {
                let reply = try await client.call(.scheduleRequest(request), attempt: timeout, deadline: timeout)
                promise.succeed(self.answer(reply, model: model, promptKey: promptKey, chunks: request.prefixHashes.count))
            } catch let error as WireError where error.code == .notFound {
                self.leaveFallback()
                promise.succeed(.noInstance(error.message))
            } catch let error as WireError where error.code == .timeout && error.peerResponsive {
                promise.succeed(self.slowAnswer(error))
            } catch {
                promise.succeed(self.fallback("\(error)"))
            }
        }
        return promise.futureResult
    }

    private func answer(_ reply: Envelope.Body, model: String, promptKey: UInt64?, chunks: Int) -> ScheduleAnswer {
        guard case .scheduleReply(let answer) = reply else { return fallback("the scheduler answered \(reply.name)") }
        switch answer.outcome {
        case .assigned(let assignment):
            leaveFallback()
            let instance = InstanceRef(id: assignment.instanceID, endpointURL: assignment.endpointURL, model: model, isUp: true)
            let prefill = prefillTarget(assignment)
            if prefill == nil { keep(assignment, instance, promptKey: promptKey, chunks: chunks) }
            return .assigned(instance, prefill: prefill)
        case .wait(let hint):
            leaveFallback()
            return .wait(retryAfter: .milliseconds(Int64(hint.retryAfterMs)))
        case .hold(let hold):
            leaveFallback()
            return .hold(retryAfter: .milliseconds(Int64(hold.retryAfterMs)))
        case nil:
            return fallback("the scheduler's answer had no outcome")
        }
    }

    /// Keeps the grant an assignment carries, for the request that continues this one.
    private func keep(_ assignment: Assignment, _ instance: InstanceRef, promptKey: UInt64?, chunks: Int) {
        guard assignment.reuseMs > 0, let promptKey else { return }
        let now = now
        grants.withLock {
            $0.grant(promptKey: promptKey, chunks: chunks, instance: instance, for: .milliseconds(Int64(assignment.reuseMs)), now: now)
            grantsHeld.store($0.count, ordering: .relaxed)
        }
    }

    /// The instance a chat request may go to without asking: the leader's grant for the turn it
    /// continues, taken (one request per grant), while that instance is up in the table and the
    /// leader answers (in fallback, requests are routed as fallback routes them).
    func takeGrant(_ features: RequestFeatures) -> InstanceRef? {
        guard grantsHeld.load(ordering: .relaxed) > 0, !isInFallback, let key = features.previousTurnKey else { return nil }
        let now = now
        let chunks = features.prefixHashes.count
        let taken = grants.withLock { grants in
            defer { grantsHeld.store(grants.count, ordering: .relaxed) }
            return grants.take(previousTurnKey: key, chunks: chunks, model: features.model, now: now)
        }
        guard let grant = taken else { return nil }
        guard store.instances.contains(where: { $0.id == grant.instance.id && $0.isUp && !$0.isPrefillOnly }) else { return nil }
        return grant.instance
    }

    /// Tells the leader a request went to `request.reusedInstanceID` under a grant, so it books
    /// it there; its answer may grant the turn after, kept under `promptKey`. Nobody waits for
    /// it: a notice that cannot be sent now (no connection on this loop) is dropped, the leader
    /// then books nothing, and the request's `finish` finds no slot to release.
    func reused(_ request: ScheduleRequest, promptKey: UInt64?, on loop: any EventLoop) {
        guard let connection = client(for: loop).liveConnection else {
            metrics.reuseNotice("not_sent")
            return
        }
        let model = request.model
        let chunks = request.prefixHashes.count
        connection.startCall(.scheduleRequest(request), timeout: callTimeout).whenComplete { result in
            switch result {
            case .success(.scheduleReply(let reply)):
                self.metrics.reuseNotice("booked")
                if case .assigned(let assignment) = reply.outcome, assignment.instanceID == request.reusedInstanceID {
                    let instance = InstanceRef(id: assignment.instanceID, endpointURL: assignment.endpointURL, model: model, isUp: true)
                    self.keep(assignment, instance, promptKey: promptKey, chunks: chunks)
                }
            case .success(let other):
                self.metrics.reuseNotice("not_booked")
                self.logger.debug("the leader did not book a reused request", metadata: ["answer": "\(other.name)"])
            case .failure(let error):
                self.metrics.reuseNotice("not_booked")
                self.logger.debug("the leader did not book a reused request", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The prefill side of a pd-split assignment, speaking the flow the configuration names or,
    /// by default, the prefill engine's own.
    private func prefillTarget(_ assignment: Assignment) -> PrefillTarget? {
        guard !assignment.prefillInstanceID.isEmpty else { return nil }
        let flow = handoffFlow ?? (assignment.prefillEngine == .sglang ? .sglang : .vllm)
        return PrefillTarget(
            id: assignment.prefillInstanceID, endpointURL: assignment.prefillEndpointURL, flow: flow,
            bootstrapPort: assignment.prefillBootstrapPort == 0 ? 8998 : Int(assignment.prefillBootstrapPort))
    }

    /// Tells the leader a request ended (one-way: nobody waits for it), on the loop's own
    /// connection when it is up; otherwise queued for a task that waits for a connection.
    func finish(_ finish: FinishRequest, on loop: any EventLoop) {
        if let connection = client(for: loop).liveConnection {
            connection.trySendOneWay(.finishRequest(finish))
        } else {
            finishQueue.yield(finish)
        }
    }

    private func sendQueuedFinishes() async {
        for await finish in finishes {
            guard let connection = try? await clients[0].client.connection(within: .seconds(1)) else { continue }
            connection.trySendOneWay(.finishRequest(finish))
        }
    }

    /// Renews this gateway's leases of tenants' budgets (`LeaseKeeper`) with the leader, following
    /// redirects, for at most twice the call timeout.
    func lease(_ request: BudgetLeaseRequest) async throws -> BudgetLeaseReply {
        let reply = try await clients[0].client.call(.budgetLeaseRequest(request), attempt: callTimeout, deadline: callTimeout * 2)
        guard case .budgetLeaseReply(let answer) = reply else { throw WireError(.protocolViolation, "a lease answered with \(reply.name)") }
        return answer
    }

    static let probeEvery = Duration.milliseconds(250)

    /// While in fallback, every `probeEvery`: asks every scheduler at once who leads (so a silent
    /// one, such as a host cut off, costs one round and not a connect timeout per try), points
    /// every loop's client at the leader found, and ends fallback when that leader answers a
    /// status call itself.
    private func probeWhileInFallback() async {
        let probe = clients[0].client
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.probeEvery)
            guard isInFallback else { continue }
            guard let leader = await probe.discoverLeader(within: callTimeout * 2) else { continue }
            for (_, client) in clients.dropFirst() { await client.follow(leader) }
            if case .statusReply(let status)? = try? await probe.call(
                .statusRequest(StatusRequest()), attempt: callTimeout, deadline: callTimeout * 2), status.raftState == "leader"
            {
                leaveFallback()
            }
        }
    }

    private func followEverywhere(_ hint: NotLeader) async {
        for (_, client) in clients { await client.follow(hint) }
    }

    /// Keeps the connections, the table subscription and the capacity subscription going until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for (_, client) in clients { group.addTask { await client.run() } }
            group.addTask { await self.followTable() }
            group.addTask { await self.followCapacity() }
            group.addTask { await self.probeWhileInFallback() }
            group.addTask { await self.sendQueuedFinishes() }
        }
    }

    private func followTable() async {
        var backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        while !Task.isCancelled {
            do {
                let connection = try await clients[0].client.connection(within: .seconds(1))
                let stream = try await connection.openStream(.subscribeInstances(SubscribeInstances(knownVersion: store.table?.version ?? 0)))
                backoff.reset()
                for try await item in stream.inbound {
                    if case .instanceTable(let table) = item {
                        store.offer(table)
                        logger.debug("instance table", metadata: ["version": "\(table.version)", "instances": "\(table.instances.count)"])
                        // A table from a follower names the leader: go there for the next calls.
                        if table.leaderID != 0, let member = members[table.leaderID] {
                            await followEverywhere(NotLeader(leaderID: table.leaderID, leaderAddress: member, term: table.term))
                        }
                    }
                }
            } catch {
                logger.debug("instance table subscription lost", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff.next())
        }
    }

    private func followCapacity() async {
        var backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        while !Task.isCancelled {
            do {
                let connection = try await clients[0].client.connection(within: .seconds(1))
                let stream = try await connection.openStream(.subscribeCapacity(SubscribeCapacity()))
                backoff.reset()
                for try await item in stream.inbound {
                    switch item {
                    case .capacityAvailable(let signal): capacityQueue.yield(signal)
                    case .notLeader(let hint): await followEverywhere(hint)
                    default: break
                    }
                }
            } catch {
                logger.debug("capacity subscription lost", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff.next())
        }
    }

    private func fallback(_ reason: String) -> ScheduleAnswer {
        if inFallback.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            metrics.fallbackTransition(entered: true)
            metrics.fallback(true)
            logger.warning("no scheduler answers: routing round-robin over the cached instance table", metadata: ["reason": "\(reason)"])
        }
        return .unavailable(reason)
    }

    /// One call the leader was too slow to answer while it went on answering others: the gateway
    /// stays with the leader (no fallback, no retarget), so one slow call costs one request's
    /// routing, not every request's; the lifecycle routes it without the leader, or puts it back
    /// in the queue it was waiting in.
    private func slowAnswer(_ error: WireError) -> ScheduleAnswer {
        logger.debug("the scheduler was slow to answer one call", metadata: ["error": "\(error)"])
        return .late(error.message)
    }

    private func leaveFallback() {
        if inFallback.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
            metrics.fallbackTransition(entered: false)
            metrics.fallback(false)
            logger.notice("the scheduler answers again: routing by the scheduler")
        }
    }
}
