import AgentCore
import AsyncHTTPClient
import NIOSSL
import Foundation
import Logging
import MetricsEndpoint
import Synchronization
import NIOCore
import PromText
import Wire

/// `junction agent`: keeps one engine registered with the scheduler trio and streams its load.
/// It finds the engine's kind and model, registers it with the leader (following redirects),
/// and runs two loops: every scrape interval it probes `/health` and scrapes `/metrics`, each
/// with its own deadline (`observe`), and every report interval it sends a `LoadReport` of what
/// it last observed (`report`), which is also the instance's heartbeat; a change of health is
/// reported at once rather than at the next period. The report loop never
/// waits on the engine: a hung engine is reported unhealthy after `health_failures` deadlines,
/// and the agent's reports (and so the leader's acknowledgements) keep flowing meanwhile. A lost stream, a leader change or an
/// "unknown instance" answer sends it back to registering, after a jittered backoff. On a
/// graceful shutdown it drains the instance, waits for the engine to go idle (bounded), and
/// deregisters it. It only reads from the engine.
public actor Agent {
    public let configuration: AgentConfiguration
    private let logger: Logger
    private let engine: EngineClient
    private let leader: LeaderClient
    private var health: HealthTracker
    private var normaliser: LoadNormaliser?
    /// The `/metrics` page to ask for, once the engine's kind is known.
    private var query: MetricsQuery?
    private var identity: EngineIdentity?
    private var sequence: UInt64 = 0
    private var lastLoad = NormalisedLoad()
    /// When the last observation of the engine ended (a report carries its age).
    private var observedAt = ContinuousClock.now
    private let started = ContinuousClock.now
    /// Wakes the open report stream's sender: its timer each period, and `observe` when the
    /// engine's health changes, so a dead engine is reported at once, not a period later.
    private var reportNow: AsyncStream<Void>.Continuation?
    /// True from a registration until the report stream to that leader ends.
    private var linked = false
    public nonisolated let metrics = AgentMetrics()

    struct EngineIdentity: Sendable {
        var family: EngineFamily
        var served: ServedModels
    }
    /// What the latest successful registration said the engine serves; `refreshServedModels`
    /// registers again when `/v1/models` has changed since.
    private var registeredServed: ServedModels?
    /// When `/v1/models` was last read.
    private var modelsReadAt = ContinuousClock.now

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        engine = EngineClient(
            baseURL: configuration.engineURL, timeout: .milliseconds(Int64(configuration.scrapeTimeoutMilliseconds)),
            http: Self.httpClient(trusting: configuration.engineTrustRoots))
        leader = LeaderClient(
            schedulers: configuration.cluster.members.map { LeaderClient.Target(host: $0.host, port: $0.port) },
            configuration: configuration.wire,
            logger: logger)
        health = HealthTracker(failureThreshold: configuration.healthFailures)
    }

    private var interval: Duration { .milliseconds(configuration.scrapeIntervalMilliseconds) }

    /// Runs until `waitForShutdown` returns (then drains and deregisters) or the task is cancelled.
    /// The shared client, or one of the agent's own that trusts `agent.engine_ca`.
    private static func httpClient(trusting roots: [NIOSSLCertificate]?) -> HTTPClient {
        guard let roots else { return HTTPClient.shared }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(roots)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    public func run(untilShutdown waitForShutdown: @escaping @Sendable () async -> Void) async {
        let leader = self.leader
        await withTaskGroup { outer in
            outer.addTask { await leader.run() }
            await withTaskGroup { inner in
                inner.addTask { await self.mainLoop() }
                inner.addTask { await self.observeContinuously() }
                inner.addTask { await waitForShutdown() }
                await inner.next()
                inner.cancelAll()
            }
            if !Task.isCancelled, identity != nil { await drainAndDeregister() }
            outer.cancelAll()
        }
        if engine.http !== HTTPClient.shared { try? await engine.http.shutdown() }
    }

    // MARK: the loop

    private func mainLoop() async {
        var backoff = Backoff(base: .milliseconds(50), cap: .seconds(2))
        while !Task.isCancelled {
            if identity == nil {
                identity = await discover()
                if identity == nil {
                    try? await Task.sleep(for: interval)
                    continue
                }
                // The first report then carries the engine's health, not "unknown".
                await observe()
            }
            do {
                let reportEvery = try await register()
                let streamed = ContinuousClock.now
                defer {
                    // Only a stream that lived a while proves the link good: one the scheduler
                    // ends at once must not turn into a tight register-and-fail loop (each
                    // registration is a Raft entry).
                    if ContinuousClock.now - streamed > .seconds(5) { backoff.reset() }
                }
                try await streamReports(every: reportEvery)
            } catch is CancellationError {
                return
            } catch {
                if linked { metrics.linkLost() }
                linked = false
                logger.info("scheduler link lost; registering again", metadata: ["reason": "\(error)"])
            }
            try? await Task.sleep(for: backoff.next())
        }
    }

    /// The engine's kind and model, or nil while it does not answer.
    private func discover() async -> EngineIdentity? {
        let page = try? await engine.scrape()
        let models: [(entry: ServedModels.Entry, ownedBy: String)]
        do { models = try await engine.models() } catch {
            if case .tls = error {
                logger.warning("the engine's TLS handshake fails", metadata: ["engine": "\(configuration.engineURL)", "reason": "\(error)"])
            } else {
                logger.info("waiting for the engine", metadata: ["engine": "\(configuration.engineURL)", "reason": "\(error)"])
            }
            return nil
        }
        guard let served = servedModels(models.map(\.entry)) else {
            logger.warning("the engine serves no model yet", metadata: ["engine": "\(configuration.engineURL)"])
            return nil
        }
        let model = served.model
        var family = configuration.engineFamily ?? page.flatMap(EngineFamily.detect)
        if family == nil { family = models.lazy.compactMap { EngineFamily.detect(ownedBy: $0.ownedBy) }.first }
        if family == nil, await engine.answersSGLangModelInfo() { family = .sglang }
        guard let family else {
            logger.warning(
                "cannot tell the engine's kind from /metrics, /v1/models or /get_model_info; set agent.engine",
                metadata: ["engine": "\(configuration.engineURL)"])
            return nil
        }
        var normaliser = LoadNormaliser(family: family)
        query = MetricsQuery(family: family, filtering: configuration.filterMetrics)
        metrics.filtering(configuration.filterMetrics)
        if let page { lastLoad = normaliser.normalise(page, at: (ContinuousClock.now - started) / .seconds(1)) }
        self.normaliser = normaliser
        metrics.discovered(instanceID: configuration.instanceID, engineURL: configuration.engineURL, family: family, model: model)
        logger.notice(
            "engine found",
            metadata: [
                "engine": "\(configuration.engineURL)", "kind": "\(family.rawValue)", "model": "\(model)",
                "aliases": "\(served.aliases.joined(separator: ","))", "adapters": "\(served.adapters.joined(separator: ","))",
            ])
        return EngineIdentity(family: family, served: served)
    }

    /// The engine's names from its model list (nil when it lists none and none is configured).
    private func servedModels(_ entries: [ServedModels.Entry]) -> ServedModels? {
        guard let (served, dropped) = ServedModels.from(entries, configured: configuration.model, limit: RegistrationLimits.maxServedNames)
        else { return nil }
        if dropped > 0 {
            logger.warning(
                "the engine serves more names than a registration may carry; the rest are not routed to it",
                metadata: ["engine": "\(configuration.engineURL)", "dropped": "\(dropped)", "limit": "\(RegistrationLimits.maxServedNames)"])
        }
        return served
    }

    /// Every `modelsRefreshInterval`, reads `/v1/models` again; when the engine's names changed
    /// (vLLM loads and unloads LoRA adapters at run time), registers the new list. A failed
    /// registration is retried at the next refresh.
    private func refreshServedModels() async {
        guard var identity, ContinuousClock.now - modelsReadAt >= Self.modelsRefreshInterval else { return }
        modelsReadAt = .now
        guard let entries = try? await engine.models(), let served = servedModels(entries.map(\.entry)) else { return }
        if served != identity.served {
            logger.notice(
                "the engine's models changed",
                metadata: [
                    "engine": "\(configuration.engineURL)", "model": "\(served.model)", "aliases": "\(served.aliases.joined(separator: ","))",
                    "adapters": "\(served.adapters.joined(separator: ","))",
                ])
            identity.served = served
            self.identity = identity
        }
        if linked, registeredServed != identity.served { _ = try? await register() }
    }

    /// How often `/v1/models` is read again: an adapter loaded at run time is routed to within
    /// about this long (plus one registration and the gateways' table update).
    static let modelsRefreshInterval = Duration.seconds(2)

    /// An SGLang prefill server's bootstrap port: configured, else SGLang's default
    /// (`--disaggregation-bootstrap-port` 8998). Other engines and roles have none.
    private func bootstrapPort(_ family: EngineFamily) -> Int? {
        if let port = configuration.bootstrapPort { return port }
        return configuration.role == .prefill && family == .sglang ? 8998 : nil
    }

    /// Registers (idempotently) with the leader; returns how often to report.
    private func register() async throws -> Duration {
        guard let identity else { throw CancellationError() }
        let instance = Instance(
            id: configuration.instanceID, endpointURL: configuration.engineURL, model: identity.served.model,
            engine: Self.wireKind(identity.family), role: configuration.role, state: .up,
            kvCapacityTokens: lastLoad.kvCapacityTokens, kvBlockSize: lastLoad.kvBlockSize, agentNode: configuration.nodeName,
            bootstrapPort: UInt32(clamping: bootstrapPort(identity.family) ?? 0), aliases: identity.served.aliases,
            adapters: identity.served.adapters)
        let reply = try await leader.call(.registerInstance(RegisterInstance(instance: instance)))
        guard case .registerReply(let registered) = reply else {
            throw WireError(.protocolViolation, "register answered \(reply.name)")
        }
        metrics.registered()
        linked = true
        registeredServed = identity.served
        let scheduler = await leader.target
        logger.notice(
            "registered", metadata: ["instance": "\(registered.instanceID)", "scheduler": "\(scheduler)", "index": "\(registered.index)"])
        let asked = Duration.milliseconds(Int(registered.reportIntervalMs))
        return registered.reportIntervalMs > 0 ? min(asked, interval) : interval
    }

    /// Sends a report every `period` until the stream fails or the scheduler ends it.
    private func streamReports(every period: Duration) async throws {
        let connection = try await leader.connection(within: .seconds(1))
        let stream = try await connection.openStream(.openReportStream(OpenReportStream(instanceID: configuration.instanceID)))
        defer { stream.cancel(reason: "agent re-registering") }
        let leader = self.leader
        let lastAck = LastHeard()
        // A leader acknowledges every report; this long without one, it is stopped or cut off
        // (its TCP connection may well stay open) and the agent looks for the leader elsewhere.
        let silenceLimit = max(.seconds(1), period * 4)
        try await withThrowingTaskGroup { group in
            group.addTask {
                for try await item in stream.inbound {
                    switch item {
                    case .reportAck:
                        lastAck.heard()
                        self.metrics.reportAcknowledged()
                    case .notLeader(let hint):
                        await leader.follow(hint)
                        throw WireError(.unavailable, "the scheduler no longer leads")
                    default: continue
                    }
                }
                throw WireError(.unavailable, "the scheduler ended the report stream")
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: period)
                    if lastAck.silence > silenceLimit {
                        await leader.moveToNext()
                        throw WireError(.unavailable, "the scheduler acknowledged no report for \(silenceLimit)")
                    }
                }
            }
            let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            reportNow = wake
            defer { wake.finish() }
            group.addTask {
                let clock = ContinuousClock()
                var next = clock.now
                while true {
                    wake.yield()
                    next = max(next.advanced(by: period), clock.now)
                    try await Task.sleep(until: next, clock: clock)
                }
            }
            group.addTask {
                for await _ in wakeups {
                    try await stream.send(.loadReport(await self.report()))
                    self.metrics.reportSent()
                }
                throw CancellationError()
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// Observes the engine every scrape interval until cancelled, each observation bounded by
    /// the scrape timeout; missed intervals are not made up in a burst.
    private func observeContinuously() async {
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isCancelled {
            if identity != nil {
                await observe()
                await refreshServedModels()
            }
            next = max(next.advanced(by: interval), clock.now)
            do { try await Task.sleep(until: next, clock: clock) } catch { return }
        }
    }

    /// What the agent last observed, as the report it sends now.
    func sample() async -> LoadReport {
        await observe()
        return report()
    }

    /// Probes and scrapes the engine (concurrently), each with its deadline, and records the
    /// outcome in the health tracker and the last load.
    private func observe() async {
        let engine = self.engine
        let probed: HealthTracker.Probe
        let page: Result<Exposition, EngineClient.Failure>
        let metrics = self.metrics
        if await engine.acceptsConnections() {
            let clock = ContinuousClock()
            async let probe: HealthTracker.Probe = {
                let started = clock.now
                defer { metrics.probed(seconds: (clock.now - started) / .seconds(1)) }
                return await engine.probeHealth()
            }()
            let path = query?.path ?? "/metrics"
            async let scraped: Result<Exposition, EngineClient.Failure> = {
                let started = clock.now
                let result = await engine.scrapeResult(path)
                metrics.scraped(seconds: (clock.now - started) / .seconds(1), failure: Self.failureReason(result))
                return result
            }()
            var (probedNow, result) = await (probe, scraped)
            if case .success(let filtered) = result, let names = normaliser?.names, query?.accepts(filtered, running: names.running) == false {
                logger.notice(
                    "the engine's filtered /metrics lacks the running-requests gauge; scraping the whole page from now on",
                    metadata: ["engine": "\(configuration.engineURL)", "asked": "\(path)"])
                metrics.filtering(false)
                result = await engine.scrapeResult()
            }
            (probed, page) = (probedNow, result)
        } else {
            (probed, page) = (.refused, .failure(.unreachable("connection refused")))
            metrics.scraped(seconds: nil, failure: "refused")
        }
        let scrapedAt = ContinuousClock.now
        observedAt = scrapedAt
        var outcome = probed
        switch page {
        case .success(let exposition):
            if let load = normaliser?.normalise(exposition, at: (scrapedAt - started) / .seconds(1)) {
                lastLoad = load
                metrics.observed(load)
            }
        case .failure(.unreachable):
            outcome = .unreachable
        case .failure:
            break  // /metrics broken but /health decides
        }
        let changed = health.record(outcome)
        metrics.health(health.health, changed: changed)
        if changed {
            logger.notice("engine health changed", metadata: ["engine": "\(configuration.engineURL)", "health": "\(health.health)"])
            reportNow?.yield()
        }
    }

    /// A report of the last observation; never waits on the engine.
    private func report() -> LoadReport {
        sequence += 1
        let healthy = health.health == .healthy
        return LoadReport(
            instanceID: configuration.instanceID, sequence: sequence, health: Self.wireHealth(health.health),
            running: healthy ? UInt32(clamping: lastLoad.running) : 0, waiting: healthy ? UInt32(clamping: lastLoad.waiting) : 0,
            kvUsage: healthy ? lastLoad.kvUsage : 0, promptTokensPerS: healthy ? lastLoad.promptTokensPerSecond : 0,
            generationTokensPerS: healthy ? lastLoad.generationTokensPerSecond : 0, prefixCacheHitRate: lastLoad.prefixCacheHitRate,
            kvCapacityTokens: lastLoad.kvCapacityTokens, scrapeAgeMs: UInt32(clamping: Int((ContinuousClock.now - observedAt) / .milliseconds(1))),
            sentUnixMs: UInt64(Date().timeIntervalSince1970 * 1000), loadedAdapters: healthy ? lastLoad.loadedAdapters : [],
            maxLoras: UInt32(clamping: lastLoad.maxLoras))
    }

    // MARK: shutdown

    private func drainAndDeregister() async {
        let id = configuration.instanceID
        logger.notice("draining before stopping", metadata: ["instance": "\(id)"])
        _ = try? await leader.call(.drainRequest(DrainRequest(instanceID: id, agentStopping: true)), deadline: .seconds(2))
        let deadline = ContinuousClock.now + .milliseconds(configuration.drainTimeoutMilliseconds)
        while ContinuousClock.now < deadline {
            let report = await sample()
            if report.health != .healthy || report.running + report.waiting == 0 { break }
            try? await Task.sleep(for: interval)
        }
        do {
            _ = try await leader.call(
                .deregisterInstance(DeregisterInstance(instanceID: id, reason: "agent stopped")), deadline: .seconds(2))
            logger.notice("deregistered", metadata: ["instance": "\(id)"])
        } catch {
            logger.warning("could not deregister; the scheduler will mark it down", metadata: ["error": "\(error)"])
        }
    }

    static func wireKind(_ family: EngineFamily) -> EngineKind {
        switch family {
        case .vllm: .vllm
        case .sglang: .sglang
        case .bladellm: .bladellm
        }
    }

    static func wireHealth(_ health: HealthTracker.Health) -> Health {
        switch health {
        case .healthy: .healthy
        case .unhealthy: .unhealthy
        case .unreachable: .unreachable
        case .unknown: .unspecified
        }
    }
}


/// When the leader last acknowledged a report, shared by the stream's reader and its watchdog.
private final class LastHeard: Sendable {
    private let instant = Mutex(ContinuousClock.now)
    func heard() { instant.withLock { $0 = .now } }
    var silence: Duration { ContinuousClock.now - instant.withLock { $0 } }
}

// MARK: metrics endpoint

extension Agent {
    static func failureReason(_ result: Result<Exposition, EngineClient.Failure>) -> String? {
        switch result {
        case .success: nil
        case .failure(.unreachable): "unreachable"
        case .failure(.tls): "tls"
        case .failure(.status): "status"
        case .failure(.malformed): "malformed"
        }
    }

    /// Ready while the engine is healthy and registered with a leader that takes its reports.
    func readiness() -> (ready: Bool, reason: String) {
        if identity == nil { return (false, "the engine has not answered yet") }
        if health.health != .healthy { return (false, "the engine is \(health.health)") }
        if !linked { return (false, "not registered with a scheduler leader") }
        return (true, "")
    }

    /// What the agent's metrics endpoint serves (`MetricsServer`).
    public nonisolated var metricsResponder: MetricsResponder {
        let metrics = self.metrics
        return MetricsResponder(metrics: { metrics.page }, readiness: { [self] in await readiness() })
    }
}
