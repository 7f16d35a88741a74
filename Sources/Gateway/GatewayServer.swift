import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Tracing

/// `junction gateway`: the HTTP/WebSocket server on SwiftNIO and the scheduler link, until
/// SIGTERM or SIGINT; then it stops accepting, lets open answers finish for up to 30 s, and exits.
public enum GatewayServer {
    /// `tracing`: the tracer each request records its spans with and the service that exports
    /// them (it stops after the gateway, so the last requests' spans are sent).
    public static func run(_ config: GatewayConfiguration, logger: Logger, tracing: (tracer: any Tracer, service: any Service)? = nil) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let loops = Array(group.makeIterator())
        let shared = try GatewayShared(config: config, loops: loops, logger: logger, tracer: tracing?.tracer)
        // Each loop's context is made on its loop and only ever used there.
        var contexts: [(loop: any EventLoop, context: NIOLoopBound<LoopContext>)] = []
        for loop in loops {
            contexts.append((loop, try await loop.submit { NIOLoopBound(LoopContext(loop: loop, shared: shared), eventLoop: loop) }.get()))
        }
        let bound = contexts
        let frontTLS = try config.tls.map { try FrontTLS(files: $0) }
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1_024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                let loop = channel.eventLoop
                return loop.makeCompletedFuture {
                    let open = shared.connections.wrappingAdd(1, ordering: .relaxed).newValue
                    channel.closeFuture.whenComplete { _ in _ = shared.connections.wrappingSubtract(1, ordering: .relaxed) }
                    guard open <= config.maxClientConnections else {
                        // Over the cap: close at once rather than queue work no one can serve.
                        channel.close(promise: nil)
                        return
                    }
                    guard let context = bound.first(where: { $0.loop === loop })?.context else { return channel.close(promise: nil) }
                    if let frontTLS { try channel.pipeline.syncOperations.addHandler(frontTLS.handler()) }
                    try HTTPFront.install(on: channel, context: context.value)
                }
            }
            .bind(host: config.host, port: config.port).get()
        let port = server.localAddress?.port ?? config.port
        FileHandle.standardOutput.write(Data("gateway listening on \(frontTLS == nil ? "http" : "https")://\(config.host):\(port)\n".utf8))
        var groupConfiguration = ServiceGroupConfiguration(
            services: (tracing.map { [$0.service] } ?? []) + [GatewayService(shared: shared, server: server)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(35)
        groupConfiguration.maximumCancellationDuration = .seconds(2)
        try await ServiceGroup(configuration: groupConfiguration).run()
    }
}

/// Runs the scheduler link and the capacity signals; on graceful shutdown closes the listening
/// socket and waits (up to 30 s) for the requests in flight before it returns.
struct GatewayService: Service {
    let shared: GatewayShared
    let server: any Channel

    func run() async throws {
        let shared = self.shared
        await withDiscardingTaskGroup { group in
            group.addTask { await shared.link.run() }
            if let leases = shared.leases { group.addTask { await leases.run() } }
            group.addTask {
                for await signal in shared.link.capacity { shared.flow.signal(slots: Int(signal.freeSlots), model: signal.model) }
            }
            group.addTask {
                // The queue's own clock: wakes the first waiting request when a period passed
                // without a signal or a send.
                let period = shared.lifecycle.waitScheduleTryPeriod
                while !Task.isCancelled {
                    try? await Task.sleep(for: period)
                    shared.flow.tick(period: period)
                }
            }
            try? await gracefulShutdown()
            try? await server.close()
            let deadline = ContinuousClock.now + .seconds(30)
            while shared.inFlight.load(ordering: .relaxed) > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            group.cancelAll()
        }
    }
}
