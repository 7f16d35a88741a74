import ClusterConfig
import Foundation
import GatewayCore
import Logging
import NIOCore
import NIOSSL
import Synchronization
import Tracing

/// What every connection and request of one gateway shares, across its event loops: read-mostly
/// configuration, the metrics, the scheduler link, flow control (its wait queue) and the fallback router.
final class GatewayShared: Sendable {
    let config: GatewayConfiguration
    let lifecycle: LifecycleConfiguration
    /// What answers name this gateway by (`X-Junction-Gateway`).
    let name: String
    let logger: Logger
    /// `llm_gateway.access_log`'s lines, under their own label so they can be routed apart.
    let accessLogger: Logger
    let metrics: GatewayMetrics
    let link: SchedulerLink
    let flow: FlowGate
    /// The leases of tenants' cluster-wide budgets (nil: `cluster_budgets` is off).
    let leases: LeaseKeeper?
    private let fallback = Mutex(FallbackRouter())
    private let requestCounter = Atomic<UInt64>(0)
    /// Client connections open now (capped by `max_client_connections`).
    let connections = Atomic<Int>(0)
    /// Requests being answered now (graceful shutdown waits for them).
    let inFlight = Atomic<Int>(0)
    private let started = ContinuousClock.now
    /// Set when the config has a `tracing` section: each request then records its spans.
    let tracer: (any Tracer)?
    /// How `https` engines are verified: `llm_gateway.engine_ca`, else the system's roots.
    let engineTLS: NIOSSLContext

    init(config: GatewayConfiguration, loops: [any EventLoop], logger: Logger, tracer: (any Tracer)? = nil) throws(ConfigError) {
        self.tracer = tracer
        self.config = config
        lifecycle = config.lifecycle
        name = config.name ?? "\(config.host):\(config.port)"
        self.logger = logger
        var access = Logger(label: "junction.gateway.access")
        access.logLevel = .info
        accessLogger = access
        metrics = GatewayMetrics()
        link = SchedulerLink(configuration: config, wire: try config.wireConfiguration(), loops: loops, metrics: metrics, logger: logger)
        let started = self.started
        flow = FlowGate(configuration: config.flow, metrics: metrics, clock: { ContinuousClock.now - started })
        leases = config.flow.clusterBudgets ? LeaseKeeper(flow: flow, link: link, metrics: metrics, logger: logger) : nil
        metrics.budgetShare(leased: config.flow.clusterBudgets)
        if config.flow.clusterBudgets { metrics.declareBudgetLeases() }
        engineTLS = try Self.engineTLSContext(caFile: config.engineCA)
    }

    private static func engineTLSContext(caFile: String?) throws(ConfigError) -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.applicationProtocols = ["http/1.1"]
        tls.shutdownTimeout = .seconds(1)
        do {
            if let caFile { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) }
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ConfigError(key: "llm_gateway.engine_ca", reason: "cannot use \(caFile ?? "the system's roots"): \(error)")
        }
    }

    /// Drawn once per process: the leader counts slots by request id, so ids must not repeat
    /// across gateways (every pod of a Deployment listens on the same port) or restarts.
    private let idPrefix = "gw-" + String(UInt32.random(in: .min ... .max), radix: 16)

    /// Flow control's id for a request (unique in this process).
    func nextTicketID() -> UInt64 { ticketCounter.wrappingAdd(1, ordering: .relaxed).newValue }
    private let ticketCounter = Atomic<UInt64>(0)

    func nextRequestID() -> String {
        "\(idPrefix)-\(requestCounter.wrappingAdd(1, ordering: .relaxed).newValue)"
    }

    /// The lifecycle's time: since this gateway started.
    var now: Moment { ContinuousClock.now - started }

    private var seconds: Double { now / .seconds(1) }

    func fallbackChoice(model: String, excluding excluded: [String]) -> (InstanceRef?, knowsModel: Bool) {
        let table = link.store.instances
        let now = seconds
        let choice = fallback.withLock { $0.choose(model: model, in: table, exclude: Set(excluded), now: now) }
        return (choice, table.contains { $0.serves(model) })
    }

    /// Whether the instance table (the leader's, as this gateway last received it) has an
    /// instance serving `model`, up or not.
    func tableKnows(model: String) -> Bool { link.store.instances.contains { $0.serves(model) } }

    func failed(_ instanceID: String) {
        let now = seconds
        fallback.withLock { $0.failed(instanceID, now: now) }
    }

    func succeeded(_ instanceID: String) { fallback.withLock { $0.succeeded(instanceID) } }

    /// Whether `instanceID` failed here within the fallback's cool-off.
    func isCoolingOff(_ instanceID: String) -> Bool {
        let now = seconds
        return fallback.withLock { $0.isCoolingOff(instanceID, now: now) }
    }
}

/// One event loop's share of the gateway: its engine connection pool. Used only on its loop.
final class LoopContext {
    let loop: any EventLoop
    let shared: GatewayShared
    let pool: UpstreamPool

    init(loop: any EventLoop, shared: GatewayShared) {
        self.loop = loop
        self.shared = shared
        let config = shared.config
        pool = UpstreamPool(
            loop: loop, connectTimeout: .milliseconds(Int64(config.upstreamConnectTimeoutMilliseconds)),
            idleTimeout: .milliseconds(Int64(config.upstreamIdleTimeoutMilliseconds)), maxIdle: config.upstreamMaxIdlePerEngine,
            engineTLS: shared.engineTLS)
    }
}
