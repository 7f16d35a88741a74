import GatewayCore
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// `GET /v1/ws` after the upgrade: each text message is one OpenAI request body (`messages`
/// makes it a chat completion, `prompt` a completion), answered by the same `RequestRun` and
/// lifecycle as HTTP. The replies are the JSON chunks an SSE stream would carry, one message
/// each (or the whole JSON answer when the request does not stream), then a text message
/// `[DONE]`; an error is one message in OpenAI's error shape, then `[DONE]`. Requests on one
/// connection are answered in turn. A message may be as large as `max_body_bytes`.
final class WebSocketFront: ChannelInboundHandler, ClientSink {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let loopContext: LoopContext
    private var shared: GatewayShared { loopContext.shared }
    private let headers: HTTPHeaders
    /// Who the upgrade request's key named (checked after the upgrade).
    private let client: ClientKeys.Outcome
    private var context: ChannelHandlerContext?
    /// A text message arriving in fragments.
    private var assembling: ByteBuffer?
    private var assemblingText = false
    private var waiting: [ByteBuffer] = []
    private var run: RequestRun?
    private var events = SSEEventSplitter()
    private var closing = false
    private static let maxWaiting = 64

    init(loopContext: LoopContext, headers: HTTPHeaders, client: ClientKeys.Outcome) {
        self.loopContext = loopContext
        self.headers = headers
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    /// Called once the HTTP codec is gone (until then, frames written here would meet it).
    func start() {
        if client == .refused {
            shared.metrics.unauthenticated()
            send(OpenAIError.unauthorized().json)
            close(code: .policyViolation, reason: "invalid API key")
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelInactive(context: ChannelHandlerContext) {
        // Nothing waiting on a closed connection may start.
        closing = true
        waiting.removeAll()
        run?.clientGone()
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { run?.clientWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !closing else { return }
        switch frame.opcode {
        case .text, .binary:
            assembling = frame.unmaskedData
            assemblingText = frame.opcode == .text
            if frame.fin { messageArrived() }
        case .continuation:
            guard var message = assembling else { return close(code: .protocolError, reason: "a continuation without a message") }
            var part = frame.unmaskedData
            guard message.readableBytes + part.readableBytes <= shared.config.maxBodyBytes else {
                return close(code: .messageTooLarge, reason: "a message is limited to \(shared.config.maxBodyBytes) bytes")
            }
            assembling = nil
            message.writeBuffer(&part)
            assembling = message
            if frame.fin { messageArrived() }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            close(code: .normalClosure, reason: "")
        default:
            break
        }
    }

    private func messageArrived() {
        guard let message = assembling else { return }
        assembling = nil
        guard assemblingText else {
            send(OpenAIError.invalidRequest("Send each request as a text message holding its JSON body.").json)
            return send("[DONE]")
        }
        guard waiting.count < Self.maxWaiting else {
            send(OpenAIError(status: 429, message: "Too many requests waiting on this connection.", type: "rate_limit_error").json)
            return send("[DONE]")
        }
        waiting.append(message)
        if run == nil { next() }
    }

    /// Starts the oldest waiting request.
    private func next() {
        while run == nil, !waiting.isEmpty {
            let message = waiting.removeFirst()
            let body = Array(buffer: message)
            let kind: RequestFeatures.Kind = message.readableBytesView.firstRange(of: Array("\"messages\"".utf8)) != nil ? .chat : .completion
            let features: RequestFeatures
            do { features = try RequestFeatures.read(
                body, kind: kind, chunkBytes: shared.config.chunkBytes, maxPrefixChunks: shared.config.maxPrefixChunks) } catch {
                shared.metrics.answered(path: "/v1/ws", status: error.status, instance: nil)
                answerError(error)
                continue
            }
            events = SSEEventSplitter()
            let started = RequestRun(
                context: loopContext, sink: self, uri: kind == .chat ? "/v1/chat/completions" : "/v1/completions", headers: headers,
                body: message, features: features, pathLabel: "/v1/ws", client: clientName)
            run = started
            started.start()
        }
    }

    private var clientName: String? {
        if case .client(let name) = client { name } else { nil }
    }

    private func send(_ text: String) {
        context?.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))), promise: nil)
        context?.flush()
    }

    private func close(code: WebSocketErrorCode, reason: String) {
        guard let context, !closing else { return }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data))).assumeIsolated()
            .whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: - ClientSink

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        context?.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: body)), promise: nil)
        send("[DONE]")
    }

    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders) {}

    func streamChunk(_ chunk: ByteBuffer) {
        for payload in events.feed(chunk) where payload != "[DONE]" {
            context?.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: payload))), promise: nil)
        }
    }

    func flush() { context?.flush() }

    func endStream(error: OpenAIError?) {
        if let error { send(error.json) }
        send("[DONE]")
    }

    func answerError(_ error: OpenAIError) {
        send(error.json)
        send("[DONE]")
    }

    func requestEnded(_ run: RequestRun) {
        guard self.run === run else { return }
        self.run = nil
        next()
    }
}
