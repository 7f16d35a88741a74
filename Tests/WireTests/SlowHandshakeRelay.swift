import NIOCore
import NIOPosix

/// A TCP relay in front of a wire server that lets nothing through for `delay` after it accepts
/// a connection: every handshake through it takes at least that long, as a TLS handshake on a
/// loaded machine or a distant network does. Bytes are then relayed both ways unchanged.
final class SlowHandshakeRelay: Sendable {
    let port: Int
    private let channel: any Channel

    static func start(to backendPort: Int, delay: Duration) async throws -> SlowHandshakeRelay {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                inbound.eventLoop.scheduleTask(in: TimeAmount(delay)) {}.futureResult.flatMap {
                    ClientBootstrap(group: inbound.eventLoop).connect(host: "127.0.0.1", port: backendPort)
                }.flatMap { outbound in
                    let (toBackend, toClient) = (Forward(to: outbound), Forward(to: inbound))
                    return inbound.pipeline.addHandler(toBackend).flatMap { outbound.pipeline.addHandler(toClient) }.map {
                        inbound.setOption(.autoRead, value: true).whenComplete { _ in }
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SlowHandshakeRelay(channel: channel, port: channel.localAddress?.port ?? 0)
    }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    func close() { channel.close(promise: nil) }

    /// Writes what one side reads to the other, and closes the other when this side closes.
    private final class Forward: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        private let peer: any Channel
        init(to peer: any Channel) { self.peer = peer }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }
        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }
    }
}
