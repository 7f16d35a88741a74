import GatewayCore
import NIOCore
import NIOHTTP1

/// What an engine request's owner hears from its connection, on the connection's event loop.
protocol UpstreamDelegate: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    func upstreamBody(_ buffer: ByteBuffer)
    func upstreamEnd()
    /// `beforeAnswer`: nothing of a response arrived; `reused`: the connection had served an
    /// earlier request (the engine may have closed it meanwhile: the owner retries once on a
    /// fresh one).
    func upstreamFailed(_ why: String, beforeAnswer: Bool, reused: Bool)
    /// One read from the socket is over; true asks for the next (false: the client is slow, and
    /// the owner calls `resume` when it has room again).
    func upstreamWantsMore() -> Bool
}

/// One keep-alive HTTP/1.1 connection to an engine, carrying one request at a time. Reads only
/// when asked (autoRead is off), so a stream is read from the engine as fast as the client takes it.
final class UpstreamConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let address: EngineAddress
    private(set) var channel: (any Channel)?
    private var context: ChannelHandlerContext?
    weak var delegate: (any UpstreamDelegate)?
    /// Requests sent on this connection so far.
    private(set) var uses = 0
    private var responseBegun = false
    private var keepAlive = true
    /// Called when the connection is free for another request, or gone (then `reusable` is false).
    var onIdle: ((UpstreamConnection, _ reusable: Bool) -> Void)?
    var idleExpiry: Scheduled<Void>?

    init(address: EngineAddress) { self.address = address }

    var isActive: Bool { channel?.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Sends one request: head, the body as it is, end; and starts reading the answer.
    func send(_ head: HTTPRequestHead, body: ByteBuffer, to delegate: any UpstreamDelegate) {
        guard let context else { return delegate.upstreamFailed("the connection is closed", beforeAnswer: true, reused: uses > 0) }
        uses += 1
        responseBegun = false
        keepAlive = true
        self.delegate = delegate
        idleExpiry?.cancel()
        idleExpiry = nil
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.read()
    }

    /// Asks for more of the answer after the owner paused reading.
    func resume() { context?.read() }

    /// Ends the connection mid-request: the engine sees the close and stops working on it.
    func abandon() {
        delegate = nil
        onIdle = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            responseBegun = true
            keepAlive = head.isKeepAlive
            delegate?.upstreamHead(head)
        case .body(let buffer):
            delegate?.upstreamBody(buffer)
        case .end:
            let finished = delegate
            delegate = nil
            if keepAlive {
                onIdle?(self, true)
            } else {
                onIdle?(self, false)
                context.close(promise: nil)
            }
            finished?.upstreamEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Idle in the pool: keep one read pending, so an engine closing the connection is seen.
        guard let delegate else { return context.read() }
        if delegate.upstreamWantsMore() { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let failed = delegate
        delegate = nil
        onIdle?(self, false)
        onIdle = nil
        idleExpiry?.cancel()
        failed?.upstreamFailed("the engine closed the connection", beforeAnswer: !responseBegun, reused: uses > 1)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let failed = delegate
        delegate = nil
        failed?.upstreamFailed("\(error)", beforeAnswer: !responseBegun, reused: uses > 1)
        context.close(promise: nil)
    }
}
