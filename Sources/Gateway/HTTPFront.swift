import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// A client's HTTP/1.1 connection: reads each request, answers the small routes itself
/// (`/health`, `/ready`, `/metrics`, `/v1/models`), hands inference requests to a `RequestRun`
/// on this same event loop and writes its answer, and switches to WebSocket on any request of
/// the connection that asks for it. Thin: routing is `FrontRoute`, the upgrade `WebSocketUpgrade`,
/// a request's decisions `RequestLifecycle`.
final class HTTPFront: ChannelInboundHandler, RemovableChannelHandler, ClientSink {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let loopContext: LoopContext
    private var shared: GatewayShared { loopContext.shared }
    /// The HTTP codec handlers, removed on a WebSocket upgrade.
    private let codec: [any RemovableChannelHandler]
    private var context: ChannelHandlerContext?
    private var state = State.idle
    private var keepAlive = true
    private var idleTimer: Scheduled<Void>?
    /// Parts of requests pipelined behind the one being answered, replayed when it ends.
    private var queued: [HTTPServerRequestPart] = []
    private var queuedBytes = 0
    private static let maxQueuedParts = 1_024

    private enum State {
        case idle
        case receiving(HTTPRequestHead, FrontRoute, client: String?, body: ByteBuffer?, tooLarge: Bool)
        case running(RequestRun)
        case upgraded
        /// Answered 401 at the request head: what the client sends after it is discarded unread
        /// until the connection closes.
        case refused
    }

    /// How long a refused connection lingers, discarding, so that a client still sending its
    /// body reads the 401 rather than a reset (nginx's lingering close).
    private static let refusedLinger = TimeAmount.seconds(1)

    /// Installs the HTTP server codec and the front handler on a fresh client channel.
    static func install(on channel: any Channel, context: LoopContext) throws {
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let errors = HTTPServerProtocolErrorHandler()
        // No HTTPServerPipelineHandler: it stops reading the socket while a response is pending,
        // and then a client that leaves during an unstreamed answer goes unseen. Pipelined
        // requests are held here instead (`queued`), and reading goes on.
        let front = HTTPFront(loopContext: context, codec: [errors, encoder, decoder])
        try channel.pipeline.syncOperations.addHandlers([encoder, decoder, errors, front])
    }

    init(loopContext: LoopContext, codec: [any RemovableChannelHandler]) {
        self.loopContext = loopContext
        self.codec = codec
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        armIdleTimer()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        if case .running(let run) = state { run.clientGone() }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused request's unread body ends in a parse error when the connection closes: expected.
        if case .refused = state { return }
        context.fireErrorCaught(error)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .running(let run) = state, context.channel.isWritable { run.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .refused:
            return
        case .running, .upgraded:
            hold(part, context)
        case .idle, .receiving:
            // Parts held earlier go first: a new one must not overtake them.
            if queued.isEmpty { read(part, context) } else { hold(part, context) }
        }
    }

    /// Holds a pipelined part until the request before it is answered, within bounds: a client
    /// may pipeline, not pour unbounded data in while an answer is computed.
    private func hold(_ part: HTTPServerRequestPart, _ context: ChannelHandlerContext) {
        if case .body(let chunk) = part { queuedBytes += chunk.readableBytes }
        guard queued.count < Self.maxQueuedParts, queuedBytes <= shared.config.maxBodyBytes + (64 << 10) else {
            return context.close(promise: nil)
        }
        queued.append(part)
    }

    /// Replays pipelined requests once the one before them has been answered.
    private func replayQueued() {
        guard let context else { return }
        while !queued.isEmpty {
            switch state {
            case .idle, .receiving:
                let part = queued.removeFirst()
                if case .body(let chunk) = part { queuedBytes -= chunk.readableBytes }
                read(part, context)
            case .running, .upgraded, .refused: return
            }
        }
    }

    private func read(_ part: HTTPServerRequestPart, _ context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            idleTimer?.cancel()
            keepAlive = head.isKeepAlive
            let route = FrontRoute.decide(method: head.method, uri: head.uri)
            // The key is checked on the head: a refused request's body is never read or parsed.
            var client: String?
            if route.needsKey {
                switch shared.config.clientKeys.identify(authorization: head.headers.first(name: "authorization")) {
                case .refused: return refuseUnauthenticated(context)
                case .client(let name): client = name
                case .open: break
                }
            }
            if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // curl asks before sending a body over 1 KiB, and waits a second for this.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            state = .receiving(head, route, client: client, body: nil, tooLarge: false)
        case .body(let chunk):
            guard case .receiving(let head, let route, let client, var body, var tooLarge) = state else { return }
            state = .idle  // drop the reference while appending, so the buffer is not copied
            if !tooLarge {
                if (body?.readableBytes ?? 0) + chunk.readableBytes > shared.config.maxBodyBytes {
                    tooLarge = true
                    body = nil
                } else if body == nil {
                    body = chunk
                } else {
                    body!.writeImmutableBuffer(chunk)
                }
            }
            state = .receiving(head, route, client: client, body: body, tooLarge: tooLarge)
        case .end:
            guard case .receiving(let head, let route, let client, let body, let tooLarge) = state else { return }
            state = .idle
            dispatch(head, route, client: client, body ?? ByteBuffer(), tooLarge: tooLarge)
        }
    }

    private func dispatch(_ head: HTTPRequestHead, _ route: FrontRoute, client: String?, _ body: ByteBuffer, tooLarge: Bool) {
        switch route {
        case .health:
            respond(status: .ok, headers: [:], body: ByteBuffer())
        case .ready:
            let up = shared.link.store.instances.contains(where: \.isUp)
            respond(status: up ? .ok : .serviceUnavailable, headers: [:], body: ByteBuffer())
        case .metrics:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            respond(status: .ok, headers: headers, body: ByteBuffer(bytes: shared.metrics.registry.emitToBuffer()))
        case .models:
            respond(status: .ok, headers: Self.json, body: modelsList())
        case .webSocket:
            switch WebSocketUpgrade.decide(head) {
            case .accept(let accept): upgrade(head, accept: accept)
            case .refuse(let why): answerError(.invalidRequest(why))
            case .notRequested:
                guard shared.config.clientKeys.identify(authorization: head.headers.first(name: "authorization")) != .refused else {
                    return answerError(.unauthorized())
                }
                answerError(OpenAIError(status: 426, message: "Connect with a WebSocket upgrade.", type: "invalid_request_error"))
            }
        case .notFound:
            answerError(OpenAIError(status: 404, message: "No route for \(head.method) \(FrontRoute.path(of: head.uri)).", type: "invalid_request_error"))
            shared.metrics.answered(path: FrontRoute.path(of: head.uri), status: 404, instance: nil)
        case .inference(let kind):
            inference(head, kind, body, tooLarge: tooLarge, client: client)
        }
    }

    private func inference(_ head: HTTPRequestHead, _ kind: RequestFeatures.Kind, _ body: ByteBuffer, tooLarge: Bool, client: String?) {
        let path = FrontRoute.path(of: head.uri)
        let refuse = { (error: OpenAIError) in
            self.shared.metrics.answered(path: path, status: error.status, instance: nil)
            self.answerError(error)
        }
        guard !tooLarge else { return refuse(.tooLarge(limit: shared.config.maxBodyBytes)) }
        let features: RequestFeatures
        do { features = try RequestFeatures.read(
            Array(buffer: body), kind: kind, chunkBytes: shared.config.chunkBytes, maxPrefixChunks: shared.config.maxPrefixChunks) } catch {
            return refuse(error)
        }
        let run = RequestRun(
            context: loopContext, sink: self, uri: head.uri, headers: head.headers, body: body, features: features,
            pathLabel: path, client: client)
        state = .running(run)
        run.start()
    }

    private func modelsList() -> ByteBuffer {
        let models = Set(shared.link.store.instances.filter(\.isUp).flatMap { [$0.model] + $0.alsoServes }).sorted()
        let data = models.map { ["id": $0, "object": "model", "created": 0, "owned_by": "junction"] as [String: Any] }
        let json = (try? JSONSerialization.data(withJSONObject: ["object": "list", "data": data], options: [.sortedKeys])) ?? Data()
        return ByteBuffer(bytes: json)
    }

    private static let json: HTTPHeaders = ["Content-Type": "application/json"]

    /// 401 at the head, counted in one series made at start (a flood of bad keys adds none), then
    /// the connection is half-closed and lingers briefly, discarding, before it closes.
    private func refuseUnauthenticated(_ context: ChannelHandlerContext) {
        state = .refused
        keepAlive = false
        queued.removeAll()
        shared.metrics.unauthenticated()
        let error = OpenAIError.unauthorized()
        var headers = Self.json
        headers.add(name: "Content-Length", value: String(error.json.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .unauthorized, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: error.json)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: Self.refusedLinger) { context.close(promise: nil) }
        }
    }

    // MARK: - WebSocket

    /// Answers 101 and swaps the HTTP codec for WebSocket frames. The key is checked after the
    /// upgrade, as before: a wrong key gets OpenAI's 401 error as a message and a 1008 close.
    private func upgrade(_ head: HTTPRequestHead, accept: String) {
        guard let context else { return }
        state = .upgraded
        idleTimer?.cancel()
        var headers = head.headers
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        let front = WebSocketFront(
            loopContext: loopContext, headers: RequestRun.forwardedHeaders(headers, dropAuthorization: false),
            client: shared.config.clientKeys.identify(authorization: head.headers.first(name: "authorization")))
        context.write(wrapOutboundOut(.head(WebSocketUpgrade.switchingHead(version: head.version, accept: accept))), promise: nil)
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        let codec = self.codec
        let maxFrame = shared.config.maxBodyBytes
        written.assumeIsolated().whenComplete { [self] result in
            guard case .success = result else { return }
            // Swapped outside the request decoder's own read: a decoder removed while it decodes
            // defers its removal, and the bytes behind the upgrade would still meet it.
            context.eventLoop.assumeIsolated().execute { self.swapToWebSocket(front, codec: codec, maxFrame: maxFrame) }
        }
    }

    private func swapToWebSocket(_ front: WebSocketFront, codec: [any RemovableChannelHandler], maxFrame: Int) {
        do {
            guard let context else { return }
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandlers([
                WebSocketFrameEncoder(), ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrame)),
                WebSocketProtocolErrorHandler(), front,
            ])
            // The request decoder goes last: bytes it holds beyond the upgrade request are
            // WebSocket frames, forwarded to the frame decoder now behind it.
            for handler in codec { pipeline.removeHandler(handler, promise: nil) }
            pipeline.removeHandler(self, promise: nil)
            front.start()
        } catch {
            context?.close(promise: nil)
        }
    }

    // MARK: - ClientSink

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        guard let context else { return }
        var headers = headers
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        endResponse(context)
    }

    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders) {
        guard let context else { return }
        var headers = headers
        if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    }

    func streamChunk(_ chunk: ByteBuffer) {
        context?.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
    }

    func flush() { context?.flush() }

    func endStream(error: OpenAIError?) {
        guard let context else { return }
        if let error {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: \(error.json)\n\ndata: [DONE]\n\n")))), promise: nil)
        }
        endResponse(context)
    }

    func answerError(_ error: OpenAIError) {
        var headers = Self.json
        if let retry = error.retryAfterSeconds { headers.add(name: "Retry-After", value: String(retry)) }
        respond(status: HTTPResponseStatus(statusCode: error.status), headers: headers, body: ByteBuffer(string: error.json))
    }

    func requestEnded(_ run: RequestRun) {
        guard case .running(let current) = state, current === run else { return }
        // A stream's end is written by `endStream`; a stream the lifecycle ended otherwise (the
        // client left) needs no more bytes.
        state = .idle
    }

    private func endResponse(_ context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if case .running = state { state = .idle }
        guard keepAlive else {
            queued.removeAll()
            return written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
        armIdleTimer()
        if !queued.isEmpty {
            // After the directive that ended this answer is done, not inside it.
            context.eventLoop.assumeIsolated().execute { self.replayQueued() }
        }
    }

    /// Closes a keep-alive connection that carries no request for `client_idle_timeout_ms`.
    private func armIdleTimer() {
        idleTimer?.cancel()
        guard let context else { return }
        let timeout = TimeAmount.milliseconds(Int64(shared.config.clientIdleTimeoutMilliseconds))
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, case .idle = self.state else { return }
            self.context?.close(promise: nil)
        }
    }
}
