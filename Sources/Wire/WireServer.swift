import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A listening wire endpoint: authenticates every peer and serves its calls with `service`.
public final class WireServer: Sendable {
    private let serverChannel: NIOAsyncChannel<WireConnection, Never>
    public let port: Int
    public let host: String

    /// Binds the listener. Connections are served once `run()` is called. Port 0 picks a free port.
    public static func bind(
        host: String,
        port: Int,
        configuration: WireConfiguration,
        service: any WireService,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "junction.wire")
    ) async throws -> WireServer {
        let counts = ConnectionCounts()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.writeBufferLowWaterMark, high: configuration.writeBufferHighWaterMark))
            .bind(host: host, port: port) { [counts] child in
                child.eventLoop.makeCompletedFuture {
                    let open = counts.open.wrappingAdd(1, ordering: .relaxed).newValue
                    child.closeFuture.whenComplete { _ in counts.open.wrappingSubtract(1, ordering: .relaxed) }
                    var refusal: WireError?
                    if open > configuration.maxConnections {
                        counts.refused.wrappingAdd(1, ordering: .relaxed)
                        refusal = WireError(.overloaded, "this listener holds \(configuration.maxConnections) connections already", retryAfterMs: 1_000)
                    }
                    return try WireConnection.install(
                        on: child, side: .server, configuration: configuration, service: service, refusal: refusal, logger: logger)
                }
            }
        return WireServer(serverChannel: channel, host: host, port: channel.channel.localAddress?.port ?? port, counts: counts)
    }

    /// Connections open now, and those refused for being over `maxConnections`.
    final class ConnectionCounts: Sendable {
        let open = Atomic<Int>(0)
        let refused = Atomic<Int>(0)
    }

    private let counts: ConnectionCounts
    public var openConnections: Int { counts.open.load(ordering: .relaxed) }
    public var refusedConnections: Int { counts.refused.load(ordering: .relaxed) }

    private init(serverChannel: NIOAsyncChannel<WireConnection, Never>, host: String, port: Int, counts: ConnectionCounts) {
        self.counts = counts
        self.serverChannel = serverChannel
        self.host = host
        self.port = port
    }

    /// Serves connections until cancelled or closed; then closes every connection.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await serverChannel.executeThenClose { connections in
                await withDiscardingTaskGroup { group in
                    do {
                        for try await connection in connections {
                            group.addTask { await connection.serve() }
                        }
                    } catch {
                        // The listener failed or closed: stop accepting, let the open connections end.
                    }
                    group.cancelAll()
                }
            }
        } onCancel: {
            serverChannel.channel.close(promise: nil)
        }
    }

    /// Stops accepting and closes every connection; `run()` then returns.
    public func close() {
        serverChannel.channel.close(promise: nil)
    }
}
