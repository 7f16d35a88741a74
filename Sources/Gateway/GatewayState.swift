import AsyncHTTPClient
import Foundation
import GatewayCore
import Logging
import Synchronization

/// What every request handler of one gateway shares.
final class GatewayState: Sendable {
    let config: GatewayConfiguration
    /// What answers name this gateway by (`X-Junction-Gateway`).
    let name: String
    let logger: Logger
    let metrics: GatewayMetrics
    let link: SchedulerLink
    let queue: PendingQueue
    let upstream: Upstream
    let http: HTTPClient
    private let fallback: Mutex<FallbackRouter>
    private let requestCounter = Atomic<UInt64>(0)
    private let started = ContinuousClock.now

    init(config: GatewayConfiguration, logger: Logger) {
        self.config = config
        name = config.name ?? "\(config.host):\(config.port)"
        self.logger = logger
        metrics = GatewayMetrics()
        link = SchedulerLink(configuration: config, metrics: metrics, logger: logger)
        queue = PendingQueue(limit: config.maxQueueSize)
        var client = HTTPClient.Configuration()
        client.timeout = .init(connect: .milliseconds(Int64(config.upstreamConnectTimeoutMilliseconds)), read: nil)
        // Fail at once when an engine refuses connections: the gateway retries elsewhere itself.
        client.connectionPool.retryConnectionEstablishment = false
        client.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4_096
        client.decompression = .disabled
        client.redirectConfiguration = .disallow
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
        upstream = Upstream(
            http: http, timeout: .milliseconds(Int64(config.upstreamTimeoutMilliseconds)))
        fallback = Mutex(FallbackRouter())
    }

    func nextRequestID() -> String {
        "gw\(config.port)-\(requestCounter.wrappingAdd(1, ordering: .relaxed).newValue)"
    }

    private var now: Double { (ContinuousClock.now - started) / .seconds(1) }

    func fallbackChoice(model: String, excluding excluded: Set<String>) async -> InstanceRef? {
        let table = await link.store.instances
        let now = self.now
        return fallback.withLock { $0.choose(model: model, in: table, exclude: excluded, now: now) }
    }

    func tableKnowsModel(_ model: String) async -> Bool {
        await link.store.instances.contains { $0.model == model }
    }

    func failed(_ instance: InstanceRef) {
        let now = self.now
        fallback.withLock { $0.failed(instance.id, now: now) }
    }

    func succeeded(_ instance: InstanceRef) { fallback.withLock { $0.succeeded(instance.id) } }
}
