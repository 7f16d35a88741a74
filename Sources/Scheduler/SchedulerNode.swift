import Foundation
import Logging
import NIOCore
import Raft
import RaftStore
import Routing
import SchedulerCore
import Tracing
import Wire

/// One `junction scheduler` process: its Raft replica, the leader's soft state, the timers
/// (Raft ticks, affinity batches, heartbeat timeouts) and the answers to every wire call.
public actor SchedulerNode {
    let config: SchedulerConfiguration
    let id: NodeID
    let replica: SchedulerReplica
    let transport: WirePeerTransport
    /// How this node proves itself and accepts others: its credential from the root, and TLS
    /// when `cluster.tls` is set (its files read once, here).
    let wire: WireConfiguration
    let logger: Logger
    /// Event metrics (decisions, WAL appends, reports); the page adds `observation()`.
    public let metrics = SchedulerMetrics()
    /// Set when the config has a `tracing` section: decisions join their gateway's traces.
    let tracer: (any Tracer)?
    /// From the data directory; `identityMadeNow`: the directory was empty at this start.
    let identity: NodeIdentity
    let identityMadeNow: Bool
    /// What the first-start probe decided (nil: not run, or not yet asked anyone).
    var firstStartDecision: FirstStartDecision?
    /// Addresses of schedulers outside this node's applied membership and config, named in
    /// their heartbeats and vote requests (a newcomer that leads or campaigns before this node
    /// has applied its addition): `noteAddress`.
    var learnedAddresses: [NodeID: ReconnectingWireClient.Target] = [:]
    var soft: LeaderSoftState
    /// The term this node leads, and since when; nil while it follows.
    var ledTerm: Term?
    var leaderSince: ContinuousClock.Instant?
    var lastAffinityFlush = ContinuousClock.now
    var hub = SubscriptionHub()
    /// Commands the node proposes on its own (affinity batches, instance state changes): proposed
    /// by a task of `run`, so none outlives the node.
    let backgroundProposals: AsyncStream<SchedulerCore.SchedulerCommand>
    let backgroundProposalQueue: AsyncStream<SchedulerCore.SchedulerCommand>.Continuation

    /// The node runs on its replica's serial executor. Calls between the two then never run at
    /// the same time, so a decision reads the replicated state in place while no entry is being
    /// applied: had they run in parallel, every apply during a decision would copy the whole
    /// affinity table (copy-on-write), which under load took the leader's CPU and its heartbeats
    /// with it. Code here must not hold the state across a suspension for the same reason.
    ///
    /// That executor is an event loop (`loop`), and the node's wire server serves every
    /// connection on it, so the calls on the data path (`schedule`, `finish`) are answered where
    /// their frames are read (`scheduleNow`, `finishNow`), with no task and no hop.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { replica.unownedExecutor }
    nonisolated var loop: any EventLoop { replica.loop }

    /// Reads or drives the replica without a suspension. Safe from any code isolated to this
    /// node: both actors run on the same executor (checked at run time by `assumeIsolated`).
    func onReplica<T: Sendable>(_ operation: (isolated SchedulerReplica) throws -> T) rethrows -> T {
        try replica.assumeIsolated(operation)
    }

    /// `onStorageFailure`: what to do when this node's storage fails; nil: `failStop`.
    public init(
        config: SchedulerConfiguration, id: NodeID, logger: Logger, tracer: (any Tracer)? = nil,
        onStorageFailure: (@Sendable (String) -> Void)? = nil
    ) throws {
        self.tracer = tracer
        self.config = config
        self.id = id
        self.logger = logger
        var raft = RaftConfig(id: id, voters: Set(config.members.map(\.id)))
        raft.electionTicks = config.electionTicks
        raft.randomSeed = UInt64.random(in: 1...UInt64.max)
        var wire = WireConfiguration(role: .scheduler, nodeID: String(id), clusterSecret: config.secret)
        try wire.useTLS(config.tls)
        self.wire = wire
        transport = WirePeerTransport(
            peers: Dictionary(
                uniqueKeysWithValues: config.members.filter { $0.id != id }.map { peer in
                    let (host, port) = config.dialAddress(of: peer)
                    return (peer.id, ReconnectingWireClient.Target(host: host, port: port))
                }),
            ownAddress: config.member(id).map { "\($0.host):\($0.port)" } ?? "",
            configuration: wire, logger: logger)
        try FileManager.default.createDirectory(atPath: config.dataDirectory, withIntermediateDirectories: true)
        let storage = try FileStorage(directory: config.dataDirectory)
        let persisted = storage.load()
        (identity, identityMadeNow) = try Self.establishIdentity(
            config: config, holdsData: persisted.hardState.term > 0 || !persisted.entries.isEmpty || persisted.snapshot != nil,
            logger: logger)
        raft.incarnation = identity.incarnation
        raft.joining = !identity.firstStart
        let metrics = self.metrics
        storage.onAppend = { bytes, write, sync in metrics.walAppended(bytes: bytes, write: write, sync: sync) }
        if let delay = ProcessInfo.processInfo.environment["JUNCTION_FAULT_FSYNC_DELAY_MS"].flatMap(Int.init), delay > 0 {
            storage.injectedSyncDelay = .milliseconds(delay)
            logger.warning("fault injection: every WAL fsync is slowed", metadata: ["delay_ms": "\(delay)"])
        }
        replica = try SchedulerReplica(
            config: raft, storage: storage, transport: transport,
            onStorageFailure: onStorageFailure ?? Self.failStop(logger: logger, dataDirectory: config.dataDirectory))
        soft = LeaderSoftState(policy: config.policy, seed: 0, reconcileGrace: Self.reconcileGrace(config))
        (backgroundProposals, backgroundProposalQueue) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(4096))
    }

    /// The production answer to a storage fault: say so at error level, naming the file and the
    /// system's error, and exit at once with EX_IOERR (74), for a supervisor to restart the node
    /// from what is on disk. Exiting rather than limping on: the peers elect a new leader within
    /// an election timeout, where a node that answers but cannot persist would go on calling
    /// itself leader while the others moved on without it.
    static func failStop(logger: Logger, dataDirectory: String) -> @Sendable (String) -> Void {
        { why in
            logger.error("storage failed: this node stops", metadata: ["error": "\(why)", "data_dir": "\(dataDirectory)"])
            // _exit, not exit: the other threads keep running, and exit's teardown of globals
            // under them could crash the process and hide the reason from its supervisor.
            fflush(nil)
            _exit(74)
        }
    }

    /// Before a graceful stop: a leader hands leadership to its most caught-up follower and
    /// waits (at most two election timeouts) until it no longer leads, so the others need no
    /// election timeout to notice it went. A follower returns at once.
    public func handOverLeadership() async {
        let target: NodeID?
        do { target = try onReplica { try $0.handOverLeadership() } } catch {
            logger.warning("could not hand leadership over", metadata: ["error": "\(error)"])
            return
        }
        guard let target else { return }
        logger.notice("stopping: handing leadership over", metadata: ["to": "\(target)"])
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(2 * config.electionTicks * config.tickMilliseconds)
        while clock.now < deadline, onReplica({ $0.isLeader }) {
            try? await Task.sleep(for: .milliseconds(config.tickMilliseconds))
        }
        if onReplica({ $0.isLeader }) {
            logger.warning("stopping while still leader: the hand-over did not complete", metadata: ["to": "\(target)"])
        } else {
            logger.notice("leadership handed over", metadata: ["to": "\(target)"])
        }
    }

    /// Serves until cancelled, then returns. `metricsAt`: where to serve `/metrics`, `/healthz`
    /// and `/readyz` over HTTP (port 0: any free port, given to `onMetricsListening`); nil: nowhere.
    public func run(
        metricsAt: (host: String, port: Int)? = nil, onListening: @escaping @Sendable (Int) -> Void = { _ in },
        onMetricsListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        guard let me = config.member(id) else { return }
        let service = SchedulerService(node: self)
        let server = try await WireServer.bind(
            host: config.listen?.host ?? me.host, port: config.listen?.port ?? me.port, configuration: wire, service: service, group: replica.loop, logger: logger)
        onListening(server.port)
        let replica = self.replica
        let tick = Duration.milliseconds(config.tickMilliseconds)
        do {
            try await serve(server: server, replica: replica, tick: tick, metricsAt: metricsAt, onMetricsListening: onMetricsListening)
        } catch where Task.isCancelled {
            // Stopping: what failed on the way out (a call the stopped replica refused) is no error.
        }
    }

    private func serve(
        server: WireServer, replica: SchedulerReplica, tick: Duration, metricsAt: (host: String, port: Int)?,
        onMetricsListening: @escaping @Sendable (Int) -> Void
    ) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                // On stop, the replica fails whatever still waits on it: a proposal that can
                // never commit (a leader whose peers stopped first steps down in its own term,
                // and its pending entries are neither committed nor stale) would otherwise hold
                // its caller, and this group, for ever. Measured: a leader stopped together with
                // its peers and agents outlived SIGTERM until killed.
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3_600)) }
                await replica.stop()
            }
            group.addTask { try await server.run() }
            group.addTask { await self.transport.run() }
            group.addTask {
                for await peer in self.transport.reconnections { try? await replica.peerReconnected(peer) }
            }
            group.addTask {
                await self.syncPeers()
                for await _ in replica.changes {
                    await self.publishTableIfChanged()
                    await self.syncPeers()
                }
            }
            group.addTask { await self.proposeBackgroundCommands() }
            if let metricsAt {
                group.addTask { try await self.serveMetrics(host: metricsAt.host, port: metricsAt.port, onListening: onMetricsListening) }
            }
            if identityMadeNow { group.addTask { await self.decideFirstStart() } }
            group.addTask {
                let clock = ContinuousClock()
                var next = clock.now
                while !Task.isCancelled {
                    // Ticks missed while the node was stalled (a long fsync, a snapshot) are not
                    // made up in a burst: run back to back, they would count the stall as the
                    // peers' silence before their waiting messages are read, and a leader would
                    // step down for its own pause.
                    next = max(next.advanced(by: tick), clock.now)
                    do { try await Task.sleep(until: next, clock: clock) } catch { return }  // cancelled: stop
                    // Raft's clock goes straight to the replica, not through this actor, so a
                    // node busy answering calls still sends its heartbeats on time.
                    try await replica.tick()
                    try await self.onTick()
                }
            }
        }
    }

    /// Every tick, after Raft's: publish a changed table; the leader's duties.
    func onTick() async throws {
        await publishTableIfChanged()
        guard await leads() else { return }
        let now = ContinuousClock.now
        soft.policy = policy(of: await replica.state)
        if now - lastAffinityFlush >= .milliseconds(config.affinityBatchMilliseconds) {
            lastAffinityFlush = now
            // Bounded entries: a burst of long prompts becomes several entries of at most
            // `affinityEntryBytes`, each replicated like any other, never one oversized frame.
            for batch in AffinityRecord.batches(soft.takeAffinityBatch(), maxBytes: Self.affinityEntryBytes) {
                proposeInBackground(.affinity(batch))
            }
        }
        try await markSilentInstancesDown(now: now)
    }

    /// Whether this node leads now. The first time it finds itself leading a new term it starts
    /// the leader's soft state afresh, before any call of that term uses it; when it stops
    /// leading it drops that state and ends the capacity subscriptions. Checked without a
    /// suspension between reading the role and switching state, so concurrent calls agree.
    func leads() async -> Bool { syncLeadership(await replica.leadership) }

    func syncLeadership(_ status: SchedulerReplica.Leadership) -> Bool {
        guard status.isLeader else {
            if ledTerm != nil {
                ledTerm = nil
                leaderSince = nil
                soft = LeaderSoftState(policy: soft.router.configuration, seed: 0, reconcileGrace: Self.reconcileGrace(config))
                hub.endCapacitySubscriptions()
                logger.notice("no longer leader", metadata: ["term": "\(status.term)"])
            }
            return false
        }
        if ledTerm != status.term {
            ledTerm = status.term
            leaderSince = .now
            soft = LeaderSoftState(policy: soft.router.configuration, seed: UInt64.random(in: 1...UInt64.max), reconcileGrace: Self.reconcileGrace(config))
            logger.notice("became leader", metadata: ["term": "\(status.term)"])
        }
        return true
    }

    /// An instance whose agent has not reported for the heartbeat timeout is marked down. A new
    /// leader waits one timeout first, so agents have time to find it.
    private func markSilentInstancesDown(now: ContinuousClock.Instant) async throws {
        guard let since = leaderSince, now - since >= .milliseconds(config.heartbeatTimeoutMilliseconds) else { return }
        for record in await replica.state.sortedInstances where record.state == .up {
            let heard = soft.lastHeard[record.id] ?? since
            if now - heard >= .milliseconds(config.heartbeatTimeoutMilliseconds) {
                soft.lastHeard[record.id] = now  // one proposal per timeout, not one per tick
                proposeInBackground(
                    .setInstanceState(id: record.id, state: .down, reason: "missed heartbeats", atUnixMilliseconds: unixMilliseconds()))
            }
        }
    }

    private func proposeInBackground(_ command: SchedulerCore.SchedulerCommand) {
        backgroundProposalQueue.yield(command)
    }

    /// Proposes queued commands concurrently (each waits for its commit) until the node stops.
    private func proposeBackgroundCommands() async {
        let replica = self.replica
        let logger = self.logger
        await withDiscardingTaskGroup { group in
            for await command in backgroundProposals {
                group.addTask {
                    do { _ = try await replica.propose(command) } catch {
                        logger.info("proposal not applied", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    // MARK: answers

    func notLeaderReply() async -> Envelope.Body {
        let status = await replica.status
        let address = status.leader.flatMap { memberAddress($0, in: status.membership) } ?? ""
        return .notLeader(NotLeader(leaderID: status.leader ?? 0, leaderAddress: address, term: status.term))
    }

    func schedule(_ request: ScheduleRequest) async throws -> Envelope.Body {
        var (leadership, state) = onReplica { $0.leadershipAndState }
        guard syncLeadership(leadership) else { return await notLeaderReply() }
        // A reused request is booked only where it is read, in order with its gateway's other
        // messages (`scheduleNow`): booked later, it could come after the request's `finish` (or
        // its retry's `schedule`) and hold a slot nobody releases.
        if !request.reusedInstanceID.isEmpty {
            throw WireError(.unavailable, "this scheduler was just elected: the reused request was not booked", retryAfterMs: 50)
        }
        if !leadership.isCurrent {
            guard try await waitUntilCurrentLeader() else { return await notLeaderReply() }
            (leadership, state) = onReplica { $0.leadershipAndState }
        }
        return try decide(request, in: state)
    }

    /// `schedule` when it can be answered at once: nil if this node does not lead or was just
    /// elected (then `schedule` answers, with the not-leader reply or after the wait).
    func scheduleNow(_ request: ScheduleRequest) -> Result<Envelope.Body, WireError>? {
        let (leadership, state) = onReplica { $0.leadershipAndState }
        guard syncLeadership(leadership), leadership.isCurrent else { return nil }
        do { return .success(try decide(request, in: state)) } catch { return .failure(error) }
    }

    /// How old a slot must be before its engine's own count is held against it (`LeaderSoftState.reconcile`).
    static func reconcileGrace(_ config: SchedulerConfiguration) -> Duration {
        .milliseconds(max(2_000, 4 * config.reportIntervalMilliseconds))
    }

    /// The most prefix chunks of one request that the leader routes on and records; gateways
    /// cap theirs lower (`llm_gateway.max_prefix_chunks`), this bounds what any peer can make
    /// the leader store for one request.
    static let maxPrefixChunks = 8_192
    /// The most bytes of affinity records in one log entry.
    static let affinityEntryBytes = 256 << 10

    private func decide(_ request: ScheduleRequest, in state: SchedulerStateMachine) throws(WireError) -> Envelope.Body {
        var request = request
        if request.prefixHashes.count > Self.maxPrefixChunks { request.prefixHashes.removeLast(request.prefixHashes.count - Self.maxPrefixChunks) }
        let now = ContinuousClock.now
        soft.scheduling(request.requestID)
        soft.policy = policy(of: state)
        let instances = state.sortedInstances.map { soft.view(of: $0, now: now) }
        var outcome = "no_instance"
        var cachedChunks = 0
        var chosen: String?
        let span = decisionSpan(request)
        defer {
            // Measured from `now`, read before the decision began.
            metrics.decided(
                policy: soft.router.configuration.name.rawValue, outcome: outcome, seconds: (ContinuousClock.now - now) / .seconds(1),
                prefixChunks: Self.booked.contains(outcome) ? request.prefixHashes.count : 0, cachedChunks: cachedChunks)
            if let span {
                span.attributes["junction.policy"] = soft.router.configuration.name.rawValue
                span.attributes["junction.decision"] = outcome
                span.attributes["junction.candidates"] = instances.count
                span.attributes["junction.cached_chunks"] = cachedChunks
                if let chosen { span.attributes["junction.instance_id"] = chosen }
                span.end()
            }
        }
        let routing = RoutingRequest(
            model: request.model, prefixHashes: request.prefixHashes, promptTokens: Int(request.promptTokens),
            exclude: Set(request.excludeInstances), lastAnswerChunks: Self.answerChunks(request),
            sessionInstance: request.sessionKey.isEmpty ? nil : soft.sessions.instance(of: request.sessionKey),
            headroom: request.headroom.map {
                RoutingHeadroom(
                    maxWaiting: Int($0.maxWaiting), maxKVUsage: $0.maxKvUsage, maxRunning: Int($0.maxRunning),
                    maxPrefillSeconds: Double($0.maxPrefillMs) / 1_000)
            })
        if !request.reusedInstanceID.isEmpty {
            let (renewed, cached): (Bool, Int)
            do { (renewed, cached) = try bookReused(request, routing, instances: instances, in: state, at: now) } catch {
                outcome = "reused_refused"
                throw error
            }
            (outcome, cachedChunks, chosen) = (renewed ? "reused" : "reused_elsewhere", cached, request.reusedInstanceID)
            var answer = assignment(request.reusedInstanceID, prefill: nil, cached: cached, in: state)
            answer.reuseMs = renewed ? reuseGrant(on: request.reusedInstanceID, in: state, at: now) : 0
            return .scheduleReply(ScheduleReply(outcome: .assigned(answer)))
        }
        let decision = soft.router.decide(routing, instances: instances, affinity: state.affinity, overlay: soft.recentAffinity)
        switch decision {
        case .assign(let instance, let cached):
            if let hold = soft.warmupHold(
                request.requestID, on: instance, chain: request.prefixHashes, cachedChunks: cached, acceptsHold: request.acceptsHold, at: now)
            {
                (outcome, cachedChunks, chosen) = ("hold", cached, instance)
                return .scheduleReply(ScheduleReply(outcome: .hold(PrefixHold(
                    retryAfterMs: UInt32(max(1, (hold.retryAfter * 1_000).rounded(.up))), instanceID: instance,
                    warmingChunks: UInt32(clamping: hold.warmingChunks)))))
            }
            (outcome, cachedChunks, chosen) = ("assigned", cached, instance)
            book(request, on: instance, instances: instances, cached: cached, at: now)
            var answer = assignment(instance, prefill: nil, cached: cached, in: state)
            answer.reuseMs = reuseGrant(on: instance, in: state, at: now)
            return .scheduleReply(ScheduleReply(outcome: .assigned(answer)))
        case .assignPair(let prefill, let decode, let cached):
            (outcome, cachedChunks, chosen) = ("assigned_pair", cached, decode)
            // Both hold the prompt afterwards: the decode instance receives its KV cache.
            let tokens = uncachedTokens(request, cached: cached)
            soft.assigned(prefill, chain: request.prefixHashes, request: request.requestID, tokens: tokens, at: now)
            soft.assigned(decode, chain: request.prefixHashes, request: request.requestID, at: now)
            soft.addPrefill(prefill, tokens: tokens, at: now)
            return .scheduleReply(ScheduleReply(outcome: .assigned(assignment(decode, prefill: prefill, cached: cached, in: state))))
        case .wait(let retry, let reason):
            outcome = "wait"
            let asked = routing.headroom
            let least: RoutingHeadroom? = soft.modelsWaiting[request.model].map { RoutingHeadroom.leastOf($0, asked) } ?? asked
            // `.some`: a nil headroom (saturation alone) is a value here, not a removal.
            soft.modelsWaiting[request.model] = .some(least)
            return .scheduleReply(ScheduleReply(outcome: .wait(WaitHint(retryAfterMs: UInt32(clamping: retry), reason: reason))))
        case .noInstance(let reason):
            throw WireError(.notFound, reason)
        }
    }

    /// The decision outcomes that booked a request somewhere.
    private static let booked: Set<String> = ["assigned", "assigned_pair", "reused", "reused_elsewhere"]

    /// What the leader books for a request it sends to `instance` alone: its slot, the prompt
    /// work it adds there, the affinity it leaves, the hold's record of a prefix being computed,
    /// and its session.
    private func book(_ request: ScheduleRequest, on instance: String, instances: [RoutingInstance], cached: Int, at now: ContinuousClock.Instant) {
        let tokens = uncachedTokens(request, cached: cached)
        if let view = instances.first(where: { $0.id == instance }) {
            soft.warming(request.requestID, on: view, chain: request.prefixHashes, cachedChunks: cached, at: now)
        }
        soft.assigned(instance, chain: request.prefixHashes, request: request.requestID, tokens: tokens, at: now)
        soft.addPrefill(instance, tokens: tokens, at: now)
        soft.sessions.record(request.sessionKey, on: instance)
    }

    /// The grant a single-instance assignment to `instance` carries (`Router.grantsReuse`), in ms;
    /// 0: none. Judged after the request was booked there, with its own prompt work counted.
    private func reuseGrant(on instance: String, in state: SchedulerStateMachine, at now: ContinuousClock.Instant) -> UInt32 {
        guard let record = state.instances[instance], soft.router.grantsReuse(on: soft.view(of: record, now: now)) else { return 0 }
        return UInt32(clamping: soft.policy.reuseMilliseconds)
    }

    /// A request a gateway already sent to `reusedInstanceID` under a grant: books it there as if
    /// the leader had chosen it, and says whether the leader would have (then the answer grants
    /// the next turn again if the instance is still calm enough, `reuseGrant`; otherwise that turn
    /// asks). An instance that is not up and serving the model is refused: nothing is booked, and the gateway's request finds out from the engine.
    private func bookReused(
        _ request: ScheduleRequest, _ routing: RoutingRequest, instances: [RoutingInstance], in state: SchedulerStateMachine,
        at now: ContinuousClock.Instant
    ) throws(WireError) -> (renewed: Bool, cachedChunks: Int) {
        let id = request.reusedInstanceID
        guard let view = instances.first(where: { $0.id == id }), view.state == .up, view.role != .prefill, view.serves(request.model) else {
            throw WireError(.notFound, "instance '\(id.prefix(64))' is not up for model '\(request.model.prefix(64))': the reused request was not booked")
        }
        var renewed = false
        if soft.policy.grantsReuse, request.excludeInstances.isEmpty,
            case .assign(let choice, _) = soft.router.decide(routing, instances: instances, affinity: state.affinity, overlay: soft.recentAffinity)
        {
            renewed = choice == id
        }
        let cached = soft.router.cachedChunks(on: id, routing, instances: instances, affinity: state.affinity, overlay: soft.recentAffinity)
        book(request, on: id, instances: instances, cached: cached, at: now)
        return (renewed, cached)
    }

    /// The answer naming `instance` (the decode side of a pd-split pair) and, for a pair, the
    /// prefill instance with what the gateway needs to drive the hand-off.
    private func assignment(_ instance: String, prefill: String?, cached: Int, in state: SchedulerStateMachine) -> Assignment {
        let record = state.instances[instance]!
        var answer = Assignment(
            instanceID: instance, endpointURL: record.endpointURL, engine: SchedulerCommandCoding.instance(record).engine,
            cachedChunks: UInt32(clamping: cached), policy: policy(of: state).name.rawValue)
        if let prefill, let prefillRecord = state.instances[prefill] {
            answer.prefillInstanceID = prefill
            answer.prefillEndpointURL = prefillRecord.endpointURL
            answer.prefillEngine = SchedulerCommandCoding.instance(prefillRecord).engine
            answer.prefillBootstrapPort = UInt32(clamping: prefillRecord.bootstrapPort ?? 0)
        }
        return answer
    }

    /// The prompt tokens the chosen instance will compute: the prompt less what is believed cached.
    private func uncachedTokens(_ request: ScheduleRequest, cached: Int) -> Double {
        max(0, Double(request.promptTokens) - Double(cached) * soft.router.configuration.chunkTokens)
    }

    private static func answerChunks(_ request: ScheduleRequest) -> Range<Int>? {
        guard request.answerEndChunk > 0, request.answerStartChunk <= request.answerEndChunk,
            Int(request.answerEndChunk) <= request.prefixHashes.count
        else { return nil }
        return Int(request.answerStartChunk)..<Int(request.answerEndChunk)
    }

    /// True once this node leads with a current state; false if it does not lead. A new leader
    /// commits its first entry within a round trip, so the wait is short.
    private func waitUntilCurrentLeader() async throws -> Bool {
        for _ in 0..<100 {
            let leadership = await replica.leadership
            guard syncLeadership(leadership) else { return false }
            if leadership.isCurrent { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw WireError(.unavailable, "this scheduler was just elected and has not yet committed its first entry", retryAfterMs: 50)
    }

    func finish(_ request: FinishRequest) async -> Envelope.Body {
        guard finishNow(request) else { return await notLeaderReply() }
        return .ack(Ack())
    }

    /// Frees what the request held; false (and nothing done) if this node does not lead.
    func finishNow(_ request: FinishRequest) -> Bool {
        guard syncLeadership(onReplica { $0.leadership }) else { return false }
        soft.finished(request.instanceID, request: request.requestID)
        signalCapacityIfWaiting(request.instanceID)
        return true
    }

    func register(_ request: RegisterInstance) async throws -> Envelope.Body {
        guard var wireInstance = request.instance else { throw WireError(.invalidArgument, "RegisterInstance needs an instance") }
        guard await leads() else { return await notLeaderReply() }
        // An agent says what its engine is, not what state the cluster holds it in: a registration
        // is "up", and the drain an operator set stays (an agent cannot lift it by registering down, then up).
        wireInstance.state = .up
        var record: InstanceRecord
        do { record = try SchedulerCommandCoding.record(wireInstance) } catch {
            throw WireError(.invalidArgument, error.description)
        }
        if let existing = await replica.state.instances[record.id], existing.state == .draining, record.state == .up,
            existing.stateReason != Self.agentStoppingReason
        {
            record.state = .draining  // re-registering does not undo an operator's drain
        }
        record.stateChangedUnixMilliseconds = unixMilliseconds()
        record.stateReason = "registered"
        _ = try await proposeForReply(.upsertInstance(record))
        soft.lastHeard[record.id] = .now
        return .registerReply(
            RegisterReply(
                instanceID: record.id, reportIntervalMs: UInt32(config.reportIntervalMilliseconds),
                heartbeatTimeoutMs: UInt32(config.heartbeatTimeoutMilliseconds), index: await appliedIndex()))
    }

    func deregister(_ request: DeregisterInstance) async throws -> Envelope.Body {
        guard await leads() else { return await notLeaderReply() }
        let outcome = try await proposeForReply(.removeInstance(id: request.instanceID))
        if case .unknownInstance(let id) = outcome { throw WireError(.notFound, "no instance \(id)") }
        return .ack(Ack(index: await appliedIndex(), message: "removed \(request.instanceID)"))
    }

    /// The policy decisions use: an operator's (through the log), else this node's config file's.
    func policy(of state: SchedulerStateMachine) -> PolicyConfiguration { state.policy ?? config.policy }

    func setPolicy(_ request: SetPolicyRequest) async throws -> Envelope.Body {
        guard let wire = request.policy else { throw WireError(.invalidArgument, "SetPolicyRequest needs a policy") }
        guard await leads() else { return await notLeaderReply() }
        var policy = policy(of: await replica.state)
        guard let name = PolicyConfiguration.Name(rawValue: wire.name) else {
            throw WireError(.invalidArgument, PolicyError.unknownPolicy(wire.name).description)
        }
        policy.name = name
        for parameter in wire.params {
            do { try policy.set(parameter.key, parameter.value) } catch { throw WireError(.invalidArgument, error.description) }
        }
        _ = try await proposeForReply(.setPolicy(policy))
        return .ack(Ack(index: await appliedIndex(), message: "policy \(name.rawValue)"))
    }

    /// The reason of a drain an instance's own agent asked for as it stopped; the next
    /// registration of the instance ends it (an operator's drain it keeps).
    static let agentStoppingReason = "agent stopping"

    func drain(_ request: DrainRequest) async throws -> Envelope.Body {
        guard await leads() else { return await notLeaderReply() }
        let outcome = try await proposeForReply(
            .setInstanceState(
                id: request.instanceID, state: request.undrain ? .up : .draining,
                reason: request.undrain ? "operator undrain" : request.agentStopping ? Self.agentStoppingReason : "operator drain",
                atUnixMilliseconds: unixMilliseconds()))
        if case .unknownInstance(let id) = outcome { throw WireError(.notFound, "no instance \(id)") }
        return .ack(Ack(index: await appliedIndex(), message: request.undrain ? "undrained" : "draining"))
    }

    func report(_ report: LoadReport) async throws -> Bool {
        guard await leads() else { return false }
        guard let record = await replica.state.instances[report.instanceID] else {
            throw WireError(.notFound, "no instance \(report.instanceID): register again")
        }
        let healthy = report.health == .healthy || report.health == .unspecified
        soft.report(
            report.instanceID,
            load: EngineLoad(
                running: Int(report.running), waiting: Int(report.waiting), kvUsage: report.kvUsage,
                promptTokensPerSecond: report.promptTokensPerS, generationTokensPerSecond: report.generationTokensPerS,
                loadedAdapters: report.loadedAdapters),
            healthy: healthy, prefixCacheHitRate: report.prefixCacheHitRate.isFinite ? min(1, max(0, report.prefixCacheHitRate)) : 0,
            readingAge: .milliseconds(Int64(min(report.scrapeAgeMs, 60_000))), at: .now)
        metrics.reportAccepted()
        signalCapacityIfWaiting(report.instanceID)
        // Reports move an instance between up and down only: a drained instance stays drained
        // (an unhealthy report, then a healthy one, must not lift an operator's drain).
        if !healthy, record.state == .up {
            proposeInBackground(
                .setInstanceState(id: record.id, state: .down, reason: "agent reports the engine \(report.health)", atUnixMilliseconds: unixMilliseconds()))
        } else if healthy, record.state == .down {
            proposeInBackground(.setInstanceState(id: record.id, state: .up, reason: "engine recovered", atUnixMilliseconds: unixMilliseconds()))
        }
        return true
    }

    func status() async -> Envelope.Body {
        var reachable: [NodeID: Bool] = [:]
        for member in onReplica({ $0.membership.members }) where member != id { reachable[member] = await transport.isConnected(member) }
        // Read after the last suspension: see `unownedExecutor`.
        let (status, state) = (await replica.status, await replica.state)
        let now = ContinuousClock.now
        var members: [MemberStatus] = []
        let membership = status.membership
        for member in membership.members.sorted() {
            let address = memberAddress(member, in: membership) ?? ""
            members.append(
                MemberStatus(
                    id: member, address: address, reachable: member == id || reachable[member] == true,
                    matchIndex: member == id ? status.lastIndex : status.progress[member] ?? 0,
                    learner: membership.learners.contains(member),
                    claimedIncarnation: membership.incarnations[member] ?? 0,
                    heardIncarnation: member == id ? identity.incarnation : status.heardIncarnations[member] ?? 0))
        }
        let isLeader = status.role == .leader && ledTerm == status.term
        let instances = state.sortedInstances.map { record in
            let report = isLeader ? soft.reports[record.id] : nil
            return InstanceStatus(
                instance: SchedulerCommandCoding.instance(record),
                lastReport: report.map {
                    LoadReport(
                        instanceID: record.id, health: $0.healthy ? .healthy : .unhealthy, running: UInt32(clamping: $0.load.running),
                        waiting: UInt32(clamping: $0.load.waiting), kvUsage: $0.load.kvUsage,
                        promptTokensPerS: $0.load.promptTokensPerSecond, generationTokensPerS: $0.load.generationTokensPerSecond,
                        loadedAdapters: $0.load.loadedAdapters)
                },
                reportAgeMs: report.map { UInt32(clamping: Int((now - $0.receivedAt) / .milliseconds(1))) } ?? 0,
                inFlight: UInt32(clamping: isLeader ? soft.inFlight[record.id] ?? 0 : 0),
                affinityEntries: UInt32(clamping: state.affinity.entryCount(of: record.id)))
        }
        return .statusReply(
            StatusReply(
                nodeID: id, leaderID: status.leader ?? 0, term: status.term, commitIndex: status.commitIndex,
                appliedIndex: status.appliedIndex, raftState: "\(status.role)", members: members, instances: instances,
                policy: SchedulerCommandCoding.policy(policy(of: state)), registryVersion: state.registryVersion,
                incarnation: identity.incarnation, clusterName: config.clusterName,
                fresh: identityMadeNow && status.holdsNothing && firstStartDecision?.isJoin != true))
    }

    private func proposeForReply(_ command: SchedulerCore.SchedulerCommand) async throws -> ApplyOutcome {
        do {
            let outcome = try await replica.propose(command)
            if case .rejected(let why) = outcome { throw WireError(.invalidArgument, why) }
            return outcome
        } catch let error as ReplicaError {
            switch error {
            case .notLeader, .leadershipLost, .leadershipTransferInProgress, .storageBacklog:
                throw WireError(.unavailable, error.description, retryAfterMs: 200)
            case .storage, .stopped:
                throw WireError(.internal, error.description)
            case .entryTooLarge, .membershipChangeRefused:
                throw WireError(.invalidArgument, error.description)
            }
        }
    }

    private func appliedIndex() async -> UInt64 { await replica.status.appliedIndex }

    private func unixMilliseconds() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
}
