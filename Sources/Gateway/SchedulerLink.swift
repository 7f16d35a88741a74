import ClusterConfig
import Foundation
import GatewayCore
import Logging
import Synchronization
import Wire

/// The gateway's side of the scheduler trio: `schedule` and `finish` calls to the leader over one
/// multiplexed connection, the instance-table subscription (cached in `InstanceTableStore`), and
/// the capacity signal. When the leader cannot answer within the per-call timeout the gateway is
/// in fallback: it routes round-robin over the cached table until a schedule call succeeds again.
/// Every transition is logged and counted.
final class SchedulerLink: Sendable {
    enum Outcome: Sendable {
        /// `prefill`: pd-split chose a pair; the instance is the decode side.
        case assigned(InstanceRef, cachedChunks: Int, prefill: PrefillTarget?)
        case wait(retryAfterMilliseconds: Int)
        case noInstance(String)
        /// No scheduler answered in time: route by fallback.
        case unavailable(String)
    }

    let leader: LeaderClient
    let store: InstanceTableStore
    let capacity: AsyncStream<CapacityAvailable>
    private let finishes: AsyncStream<FinishRequest>
    private let finishQueue: AsyncStream<FinishRequest>.Continuation
    private let capacityQueue: AsyncStream<CapacityAvailable>.Continuation
    private let callTimeout: Duration
    /// `llm_gateway.pd_handoff`; nil: by the prefill engine's kind.
    private let handoffFlow: HandoffFlow?
    private let logger: Logger
    private let state = Mutex(State())
    /// Scheduler id → address, to follow the leader a table names.
    private let members: [UInt64: String]

    struct State {
        var inFallback = false
    }

    private let metrics: GatewayMetrics

    init(configuration: GatewayConfiguration, metrics: GatewayMetrics, logger: Logger) {
        self.metrics = metrics
        let wire = WireConfiguration(role: .gateway, nodeID: "gateway-\(configuration.port)", clusterSecret: configuration.cluster.secret)
        leader = LeaderClient(
            schedulers: configuration.cluster.members.map { LeaderClient.Target(host: $0.host, port: $0.port) }, configuration: wire,
            logger: logger)
        store = InstanceTableStore(path: configuration.tableCachePath, logger: logger)
        (capacity, capacityQueue) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(64))
        (finishes, finishQueue) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(16_384))
        callTimeout = .milliseconds(configuration.schedulerTimeoutMilliseconds)
        handoffFlow = configuration.handoffFlow
        members = Dictionary(uniqueKeysWithValues: configuration.cluster.members.map { ($0.id, $0.address) })
        self.logger = logger
    }

    var isInFallback: Bool { state.withLock { $0.inFallback } }

    /// Asks the leader where to send a request. Never waits longer than the call timeout (plus
    /// one redirect), so a dead trio costs each request that much before fallback.
    func schedule(_ features: RequestFeatures, requestID: String, exclude: Set<String>) async -> Outcome {
        let request = ScheduleRequest(
            requestID: requestID, model: features.model, prefixHashes: features.prefixHashes,
            promptTokens: UInt32(clamping: features.promptTokens), maxTokens: UInt32(clamping: features.maxTokens ?? 0),
            excludeInstances: exclude.sorted(), answerStartChunk: UInt32(clamping: features.lastAnswerChunks?.lowerBound ?? 0),
            answerEndChunk: UInt32(clamping: features.lastAnswerChunks?.upperBound ?? 0))
        // In fallback, requests do not wait for a scheduler that did not answer: a background
        // probe (`probeWhileInFallback`) ends fallback as soon as the leader answers.
        if isInFallback { return .unavailable("in fallback") }
        do {
            let reply = try await leader.call(.scheduleRequest(request), attempt: callTimeout, deadline: callTimeout * 2)
            guard case .scheduleReply(let answer) = reply else { return fallback("the scheduler answered \(reply.name)") }
            leaveFallback()
            switch answer.outcome {
            case .assigned(let assignment):
                return .assigned(
                    InstanceRef(id: assignment.instanceID, endpointURL: assignment.endpointURL, model: features.model, isUp: true),
                    cachedChunks: Int(assignment.cachedChunks), prefill: prefillTarget(assignment))
            case .wait(let hint):
                return .wait(retryAfterMilliseconds: Int(hint.retryAfterMs))
            case nil:
                return fallback("the scheduler's answer had no outcome")
            }
        } catch let error as WireError where error.code == .notFound {
            leaveFallback()
            return .noInstance(error.message)
        } catch {
            // A request whose client went away says nothing about the scheduler.
            if Task.isCancelled { return .unavailable("cancelled") }
            return fallback("\(error)")
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

    static let probeEvery = Duration.milliseconds(250)

    /// While in fallback, asks the scheduler believed to lead for its status every `probeEvery`;
    /// when a leader answers, routing by the scheduler resumes. A follower that names the leader
    /// is followed at once, in the same probe, so a new leader ends fallback one round trip after
    /// any scheduler knows it.
    private func probeWhileInFallback() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.probeEvery)
            guard isInFallback else { continue }
            for _ in 0..<members.count {
                guard case .statusReply(let status)? = try? await leader.call(
                    .statusRequest(StatusRequest()), attempt: callTimeout, deadline: callTimeout * 2)
                else { break }
                if status.raftState == "leader" {
                    leaveFallback()
                    break
                }
                guard status.leaderID != 0, let address = members[status.leaderID] else {
                    await leader.moveToNext()
                    break
                }
                await leader.follow(NotLeader(leaderID: status.leaderID, leaderAddress: address, term: status.term))
            }
        }
    }

    /// Tells the leader a request ended (one-way: nobody waits for it). Queued and sent by a
    /// task of `run`; when the queue is far behind, the oldest are dropped (the leader's
    /// in-flight counts are corrected by the agents' reports).
    func finish(_ finish: FinishRequest) {
        finishQueue.yield(finish)
    }

    private func sendFinishes() async {
        for await finish in finishes {
            guard let connection = try? await leader.connection(within: .milliseconds(50)) else { continue }
            connection.trySendOneWay(.finishRequest(finish))
        }
    }

    /// Keeps the connection, the table subscription and the capacity subscription going until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.leader.run() }
            group.addTask { await self.followTable() }
            group.addTask { await self.followCapacity() }
            group.addTask { await self.probeWhileInFallback() }
            group.addTask { await self.sendFinishes() }
        }
    }

    private func followTable() async {
        var backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
        while !Task.isCancelled {
            do {
                let connection = try await leader.connection(within: .seconds(1))
                let stream = try await connection.openStream(.subscribeInstances(SubscribeInstances(knownVersion: await store.table?.version ?? 0)))
                backoff.reset()
                for try await item in stream.inbound {
                    if case .instanceTable(let table) = item {
                        await store.offer(table)
                        logger.debug("instance table", metadata: ["version": "\(table.version)", "instances": "\(table.instances.count)"])
                        // A table from a follower names the leader: go there for the next calls.
                        if table.leaderID != 0, let member = configurationMember(table.leaderID) {
                            await leader.follow(NotLeader(leaderID: table.leaderID, leaderAddress: member, term: table.term))
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
                let connection = try await leader.connection(within: .seconds(1))
                let stream = try await connection.openStream(.subscribeCapacity(SubscribeCapacity()))
                backoff.reset()
                for try await item in stream.inbound {
                    switch item {
                    case .capacityAvailable(let signal): capacityQueue.yield(signal)
                    case .notLeader(let hint): await leader.follow(hint)
                    default: break
                    }
                }
            } catch {
                logger.debug("capacity subscription lost", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: backoff.next())
        }
    }

    private func configurationMember(_ id: UInt64) -> String? { members[id] }

    private func fallback(_ reason: String) -> Outcome {
        let entered = state.withLock { state -> Bool in
            guard !state.inFallback else { return false }
            state.inFallback = true
            return true
        }
        if entered { metrics.fallbackTransition(entered: true); metrics.fallback(true) }
        if entered { logger.warning("no scheduler answers: routing round-robin over the cached instance table", metadata: ["reason": "\(reason)"]) }
        return .unavailable(reason)
    }

    private func leaveFallback() {
        let left = state.withLock { state -> Bool in
            guard state.inFallback else { return false }
            state.inFallback = false
            return true
        }
        if left {
            metrics.fallbackTransition(entered: false)
            metrics.fallback(false)
            logger.notice("the scheduler answers again: routing by the scheduler")
        }
    }
}
