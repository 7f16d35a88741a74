import Logging
import NIOCore

/// One authenticated wire connection, usable from any task. It carries many concurrent calls and
/// streams; `serve()` answers the peer's calls when this side was given a service.
public final class WireConnection: Sendable {
    public let channel: any Channel
    let configuration: WireConfiguration
    private let handler: NIOLoopBound<WireConnectionHandler>
    private let service: (any WireService)?
    private let inboundCalls: AsyncStream<InboundCall>
    private let established: EventLoopFuture<PeerIdentity>

    /// Installs the codec and protocol handlers on a fresh channel. Call on the channel's loop.
    static func install(
        on channel: any Channel,
        side: WireConnectionHandler.Side,
        configuration: WireConfiguration,
        service: (any WireService)?,
        refusal: WireError? = nil,
        logger: Logger
    ) throws -> WireConnection {
        let established = channel.eventLoop.makePromise(of: PeerIdentity.self)
        let (calls, continuation) = AsyncStream<InboundCall>.makeStream()
        let handler = WireConnectionHandler(
            side: side, configuration: configuration, service: service, refusal: refusal,
            established: established, inboundCalls: continuation, logger: logger)
        if let tls = configuration.tls { try channel.pipeline.syncOperations.addHandler(try tls.handler(side: side)) }
        try channel.pipeline.syncOperations.addHandlers([
            ByteToMessageHandler(
                EnvelopeFrameDecoder(
                    maxFrameBytes: configuration.maxFrameBytes, handshakeFrames: side == .server ? 1 : 2,
                    handshakeMaxFrameBytes: configuration.handshakeMaxFrameBytes)),
            MessageToByteHandler(EnvelopeFrameEncoder()),
            handler,
        ])
        return WireConnection(
            channel: channel, configuration: configuration, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
            service: service, inboundCalls: calls, established: established.futureResult)
    }

    private init(
        channel: any Channel, configuration: WireConfiguration, handler: NIOLoopBound<WireConnectionHandler>,
        service: (any WireService)?, inboundCalls: AsyncStream<InboundCall>, established: EventLoopFuture<PeerIdentity>
    ) {
        self.channel = channel
        self.configuration = configuration
        self.handler = handler
        self.service = service
        self.inboundCalls = inboundCalls
        self.established = established
    }

    /// Waits for the Hello handshake; throws the reason if it fails (wrong secret, wrong version, timeout).
    @discardableResult
    public func handshakeCompleted() async throws -> PeerIdentity {
        try await established.get()
    }

    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    public var isActive: Bool { channel.isActive }

    /// Sends a request and waits for its reply. A reply that is an Error is thrown as `WireError`.
    public func call(_ request: Envelope.Body, timeout: Duration? = nil) async throws -> Envelope.Body {
        guard request.kind == .request else {
            throw WireError(.invalidArgument, "\(request.name) is not a request")
        }
        let promise = channel.eventLoop.makePromise(of: Envelope.Body.self)
        let timeout = timeout ?? configuration.defaultCallTimeout
        onLoop { $0.startCall(request, timeout: timeout, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// Sends a request and returns its reply as a future on this connection's event loop. Called
    /// on that loop (the gateway's data path), it neither hops threads nor allocates a task.
    public func startCall(_ request: Envelope.Body, timeout: Duration) -> EventLoopFuture<Envelope.Body> {
        guard request.kind == .request else {
            return channel.eventLoop.makeFailedFuture(WireError(.invalidArgument, "\(request.name) is not a request"))
        }
        let promise = channel.eventLoop.makePromise(of: Envelope.Body.self)
        onLoop { $0.startCall(request, timeout: timeout, promise: promise) }
        return promise.futureResult
    }

    /// Opens a stream; the peer's items arrive on the returned stream's `inbound`.
    public func openStream(_ open: Envelope.Body) async throws -> WireStream {
        guard open.kind == .streamOpen else {
            throw WireError(.invalidArgument, "\(open.name) does not open a stream")
        }
        let promise = channel.eventLoop.makePromise(of: (UInt64, AsyncThrowingStream<Envelope.Body, any Error>).self)
        onLoop { $0.openStream(open, promise: promise) }
        let (id, inbound) = try await promise.futureResult.get()
        return WireStream(callID: id, inbound: inbound, connection: self, isOpener: true)
    }

    /// Sends a one-way message (call id 0) and waits until it is written to the socket.
    public func sendOneWay(_ message: Envelope.Body) async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        onLoop { $0.sendOneWay(message, promise: promise) }
        try await promise.futureResult.get()
    }

    /// Sends a one-way message without waiting. Dropped when the connection is closed or too far
    /// behind: for messages whose protocol survives loss (Raft's).
    public func trySendOneWay(_ message: Envelope.Body) {
        onLoop { $0.sendOneWay(message, promise: nil) }
    }

    public func close(reason: String = "closed by this side") {
        onLoop { $0.close(reason: reason) }
    }

    /// Answers the peer's calls and streams with this connection's service until the connection
    /// closes. Cancelling it closes the connection.
    public func serve() async {
        guard let service else {
            try? await closeFuture.get()
            return
        }
        guard let peer = try? await established.get() else { return }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await call in inboundCalls {
                    group.addTask { await self.answer(call, service: service, peer: peer) }
                }
            }
        } onCancel: {
            self.close(reason: "shutting down")
        }
    }

    private func answer(_ call: InboundCall, service: any WireService, peer: PeerIdentity) async {
        let result: Result<Envelope.Body?, WireError>
        do {
            if let items = call.items {
                let stream = WireStream(callID: call.callID, inbound: items, connection: self, isOpener: false)
                try await service.handleStream(call.body, stream: stream, from: peer)
                result = .success(nil)
            } else {
                let reply = try await service.handle(call.body, from: peer)
                if reply.kind == .reply {
                    result = .success(reply)
                } else {
                    result = .failure(WireError(.internal, "the service answered \(call.body.name) with \(reply.name), which is not a reply"))
                }
            }
        } catch let error as WireError {
            result = .failure(error)
        } catch {
            result = .failure(WireError(.internal, "\(error)"))
        }
        onLoop { $0.finishInbound(id: call.callID, result: result) }
    }

    func sendStreamItem(callID: UInt64, _ item: Envelope.Body) async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        onLoop { $0.sendStreamItem(id: callID, body: item, promise: promise) }
        try await promise.futureResult.get()
    }

    func endOutboundStream(callID: UInt64, cancelReason: String?) {
        onLoop { $0.endOutboundStream(id: callID, cancel: cancelReason) }
    }

    private func onLoop(_ operation: @escaping @Sendable (WireConnectionHandler) -> Void) {
        let handler = self.handler
        if channel.eventLoop.inEventLoop {
            operation(handler.value)
        } else {
            channel.eventLoop.execute { operation(handler.value) }
        }
    }
}
