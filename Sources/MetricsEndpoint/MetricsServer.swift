import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What a process tells its metrics endpoint: the exposition and whether it is ready. Both are
/// asked on every request, so the page is always the state of the moment.
public struct MetricsResponder: Sendable {
    public var metrics: @Sendable () async -> String
    /// `(true, _)`: ready. `(false, reason)`: 503 with the reason as the body.
    public var readiness: @Sendable () async -> (ready: Bool, reason: String)

    public init(
        metrics: @escaping @Sendable () async -> String,
        readiness: @escaping @Sendable () async -> (ready: Bool, reason: String) = { (true, "") }
    ) {
        self.metrics = metrics
        self.readiness = readiness
    }
}

/// A small HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz` (see `MetricsRoute`), for
/// the processes that serve no HTTP of their own: schedulers and agents. It runs on its own
/// event loop group's threads, not the scheduler's decision loop, and builds each page only
/// when asked.
public final class MetricsServer: Sendable {
    private let serverChannel: any Channel
    /// Accepted connections, closed with the server (Prometheus keeps its connection open
    /// between scrapes).
    private let connections: OpenConnections
    public let host: String
    public let port: Int

    /// Binds `host:port` (port 0: any free port) and serves at once.
    public static func bind(
        host: String, port: Int, responder: MetricsResponder,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> MetricsServer {
        let connections = OpenConnections()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                connections.track(child)
                return child.eventLoop.makeCompletedFuture {
                    // Error handling answers a malformed request with 400 and closes; pipelining
                    // assistance holds a second request until the first is answered.
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try child.pipeline.syncOperations.addHandler(MetricsHTTPHandler(responder: responder))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsServer(channel: channel, connections: connections, host: host, port: channel.localAddress?.port ?? port)
    }

    private init(channel: any Channel, connections: OpenConnections, host: String, port: Int) {
        serverChannel = channel
        self.connections = connections
        self.host = host
        self.port = port
    }

    /// Waits until cancelled (or `close()`), then stops listening and closes every connection.
    public func run() async {
        await withTaskCancellationHandler {
            try? await serverChannel.closeFuture.get()
        } onCancel: {
            self.close()
        }
        close()
    }

    public func close() {
        serverChannel.close(promise: nil)
        connections.closeAll()
    }
}

/// The connections a server has open, until each closes.
final class OpenConnections: Sendable {
    private let open = Mutex<[ObjectIdentifier: any Channel]>([:])

    func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        open.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { _ in _ = self.open.withLock { $0.removeValue(forKey: key) } }
    }

    func closeAll() {
        for channel in open.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }
}

/// One connection's requests: routes each (`MetricsRoute`), asks the responder, answers.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let responder: MetricsResponder
    private var head: HTTPRequestHead?

    init(responder: MetricsResponder) { self.responder = responder }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // no route takes a body; it is read and dropped
        case .end:
            guard let head else { return }
            self.head = nil
            let route = MetricsRoute(method: head.method.rawValue, uri: head.uri)
            let responder = self.responder
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask { await Self.answer(route, responder) }
                .whenSuccess { answer in
                    Self.write(answer, for: head, on: bound.value)
                }
        }
    }

    /// NIO's error handler has answered a malformed request with 400 by now; the connection
    /// cannot be parsed any further, so it is closed.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: String
    }

    static func answer(_ route: MetricsRoute, _ responder: MetricsResponder) async -> Answer {
        switch route {
        case .metrics:
            return Answer(status: .ok, contentType: MetricsRoute.expositionContentType, body: await responder.metrics())
        case .health:
            return Answer(status: .ok, contentType: "text/plain; charset=utf-8", body: "ok\n")
        case .ready:
            let (ready, reason) = await responder.readiness()
            return ready
                ? Answer(status: .ok, contentType: "text/plain; charset=utf-8", body: "ready\n")
                : Answer(status: .serviceUnavailable, contentType: "text/plain; charset=utf-8", body: "not ready: \(reason)\n")
        case .notFound:
            return Answer(status: .notFound, contentType: "text/plain; charset=utf-8", body: "not found: try /metrics, /healthz or /readyz\n")
        case .methodNotAllowed:
            return Answer(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: "only GET and HEAD\n")
        }
    }

    static func write(_ answer: Answer, for request: HTTPRequestHead, on context: ChannelHandlerContext) {
        let body = Array(answer.body.utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: answer.contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        if answer.status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: answer.status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlushWithPromise(NIOAny(HTTPServerResponsePart.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

extension ChannelHandlerContext {
    fileprivate func writeAndFlushWithPromise(_ data: NIOAny) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writeAndFlush(data, promise: promise)
        return promise.futureResult
    }
}
