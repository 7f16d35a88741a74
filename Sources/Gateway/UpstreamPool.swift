import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Keep-alive connections to engines for the requests of one event loop: dialled on that loop,
/// so a request and its engine connection never cross threads. Idle connections are kept up to
/// `maxIdle` per engine and closed after `idleTimeout`; one the engine closed is dropped.
final class UpstreamPool {
    let loop: any EventLoop
    private let connectTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let maxIdle: Int
    /// For `https` engines: their certificates are verified with it.
    private let engineTLS: NIOSSLContext
    private var idle: [EngineAddress: [UpstreamConnection]] = [:]

    init(loop: any EventLoop, connectTimeout: TimeAmount, idleTimeout: TimeAmount, maxIdle: Int, engineTLS: NIOSSLContext) {
        self.loop = loop
        self.engineTLS = engineTLS
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.maxIdle = maxIdle
    }

    /// A connection to `address`: an idle one when there is one (unless `fresh`), else a new one.
    /// `done` runs on the loop, at once for a pooled connection. The dial returned (nil for a
    /// pooled connection) can be abandoned while it connects.
    @discardableResult
    func acquire(_ address: EngineAddress, fresh: Bool, _ done: @escaping (Result<UpstreamConnection, any Error>) -> Void) -> Dial? {
        if !fresh, let connection = takeIdle(address) {
            done(.success(connection))
            return nil
        }
        let connection = UpstreamConnection(address: address)
        let bound = NIOLoopBound(connection, eventLoop: loop)
        let engineTLS = address.tls ? self.engineTLS : nil
        let pending = Dial()
        let boundDial = NIOLoopBound(pending, eventLoop: loop)
        let dial = ClientBootstrap(group: loop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Runs before the connect is issued: from here on, abandoning the dial
                    // closes the socket that is still connecting.
                    boundDial.value.channel = channel
                    if let engineTLS {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: engineTLS, serverHostname: address.serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(host: address.host, port: address.port)
        dial.assumeIsolated().whenComplete { result in
            pending.channel = nil
            switch result {
            case .success: done(.success(connection))
            case .failure(let error): done(.failure(error))
            }
        }
        return pending
    }

    /// A connection being dialled. An engine that drops SYNs (a full accept queue, a black-holed
    /// host) holds a dial until the connect timeout; a request whose client left must not.
    final class Dial {
        fileprivate var channel: (any Channel)?

        /// Closes the connecting socket; the dial's `done` then sees a failure.
        func abandon() {
            channel?.close(promise: nil)
            channel = nil
        }
    }

    /// Puts a connection that finished its request back, or lets it go.
    func checkIn(_ connection: UpstreamConnection, reusable: Bool) {
        remove(connection)
        guard reusable, connection.isActive, idle[connection.address, default: []].count < maxIdle else {
            connection.abandon()
            return
        }
        idle[connection.address, default: []].append(connection)
        connection.onIdle = { [weak self] connection, _ in self?.remove(connection) }
        // A read pending while idle, so an engine closing the connection is seen at once.
        connection.resume()
        connection.idleExpiry = loop.assumeIsolated().scheduleTask(in: idleTimeout) { [weak self] in
            self?.remove(connection)
            connection.abandon()
        }
    }

    private func takeIdle(_ address: EngineAddress) -> UpstreamConnection? {
        while let connection = idle[address]?.popLast() {
            connection.idleExpiry?.cancel()
            connection.idleExpiry = nil
            connection.onIdle = nil
            if connection.isActive { return connection }
        }
        return nil
    }

    private func remove(_ connection: UpstreamConnection) {
        idle[connection.address]?.removeAll { $0 === connection }
    }
}
