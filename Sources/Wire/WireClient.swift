import Logging
import NIOCore
import NIOPosix

/// Dials wire endpoints.
public enum WireClient {
    /// Connects and completes the handshake. With a `service`, the caller should run the
    /// connection's `serve()` to answer calls the peer starts.
    public static func connect(
        host: String,
        port: Int,
        configuration: WireConfiguration,
        service: (any WireService)? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration? = nil,
        logger: Logger = Logger(label: "junction.wire")
    ) async throws -> WireConnection {
        let connection: WireConnection
        do {
            connection = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(connectTimeout ?? configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelOption(.writeBufferWaterMark, value: .init(low: configuration.writeBufferLowWaterMark, high: configuration.writeBufferHighWaterMark))
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try WireConnection.install(on: channel, side: .client, configuration: configuration, service: service, logger: logger)
                    }
                }
        } catch {
            throw WireError(.unavailable, "cannot connect to \(host):\(port): \(error)")
        }
        do {
            // A peer that accepted the TCP connection but is stopped (SIGSTOP, a hung process)
            // never completes the handshake: a caller that gives up on it closes the connection.
            try await withTaskCancellationHandler {
                try await connection.handshakeCompleted()
            } onCancel: {
                connection.close(reason: "dial cancelled")
            }
        } catch {
            connection.close(reason: "handshake failed")
            throw error
        }
        return connection
    }
}
