import NIOCore
import NIOPosix
import Synchronization

/// A TCP forwarder on 127.0.0.1 in front of a real server, for tests that need one connection to
/// stall while the others flow: `stall(where:)` stops reading from the client side of the chosen
/// connections, so their bytes back up into the sender's socket and write queue, as behind a
/// slow or congested link.
final class StallableForwarder: Sendable {
    let port: Int
    private let server: any Channel
    private let registry: Registry

    /// Every connection accepted so far; shared with the server's initializer.
    private final class Registry: Sendable {
        let glues = Mutex<[Glue]>([])
    }

    /// One forwarded connection: what it has carried from the client, and its two channels.
    final class Glue: Sendable {
        let bytesFromClient = Atomic<Int>(0)
        let stalled = Atomic<Bool>(false)
        let client: any Channel
        let upstream = Mutex<(any Channel)?>(nil)
        init(client: any Channel) { self.client = client }
    }

    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let glue: Glue
        let fromClient: Bool
        init(glue: Glue, fromClient: Bool) {
            self.glue = glue
            self.fromClient = fromClient
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let other: (any Channel)? = fromClient ? glue.upstream.withLock { $0 } : glue.client
            if fromClient { glue.bytesFromClient.add(buffer.readableBytes, ordering: .relaxed) }
            other?.writeAndFlush(buffer, promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            let other: (any Channel)? = fromClient ? glue.upstream.withLock { $0 } : glue.client
            other?.close(promise: nil)
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    static func start(to targetPort: Int) async throws -> StallableForwarder {
        let group = MultiThreadedEventLoopGroup.singleton
        let registry = Registry()
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in
                let glue = Glue(client: client)
                registry.glues.withLock { $0.append(glue) }
                return ClientBootstrap(group: client.eventLoop)
                    .channelInitializer { upstream in
                        upstream.pipeline.addHandler(Relay(glue: glue, fromClient: false))
                    }
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMap { upstream in
                        glue.upstream.withLock { $0 = upstream }
                        return client.pipeline.addHandler(Relay(glue: glue, fromClient: true)).flatMap {
                            client.setOption(.autoRead, value: true)
                        }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return StallableForwarder(server: server, registry: registry)
    }

    private init(server: any Channel, registry: Registry) {
        self.server = server
        self.registry = registry
        port = server.localAddress?.port ?? 0
    }

    /// Stops reading from the client side of every connection that has carried more than
    /// `bytes` from its client; returns how many were stalled.
    @discardableResult
    func stall(carriedMoreThan bytes: Int) async throws -> Int {
        let chosen = registry.glues.withLock { $0.filter { $0.bytesFromClient.load(ordering: .relaxed) > bytes } }
        for glue in chosen {
            try await glue.client.setOption(.autoRead, value: false).get()
            glue.stalled.store(true, ordering: .relaxed)
        }
        return chosen.count
    }

    /// Whether every stalled connection is still open: a test reads it to know that what it saw
    /// arrive went past the stall, not through a fresh connection made after a stalled one died.
    var stalledConnectionsAreOpen: Bool {
        registry.glues.withLock { $0.filter { $0.stalled.load(ordering: .relaxed) }.allSatisfy(\.client.isActive) }
    }

    func close() async {
        try? await server.close()
        for glue in registry.glues.withLock({ $0 }) {
            try? await glue.client.close()
        }
    }
}
