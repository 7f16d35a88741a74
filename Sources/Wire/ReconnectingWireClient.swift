import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Keeps one connection to a target alive: `run()` dials, and after every failure or disconnect
/// waits a jittered exponential backoff before dialling again. Callers borrow the live connection
/// with `connection(within:)`, which waits briefly for a reconnect instead of failing at once.
public actor ReconnectingWireClient {
    public struct Target: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        /// `host:port`, as a NotLeader's `leader_address` or an operator writes it.
        public init?(address: String) {
            guard let colon = address.lastIndex(of: ":"), colon > address.startIndex,
                let port = Int(address[address.index(after: colon)...]), (1...65_535).contains(port)
            else { return nil }
            self.init(host: String(address[..<colon]), port: port)
        }
        public var description: String { "\(host):\(port)" }
    }

    private let configuration: WireConfiguration
    private let service: (any WireService)?
    private let group: any EventLoopGroup
    private let logger: Logger
    private var backoff: Backoff
    /// The dial under way, if any (cancelled by `retarget`).
    private var dialInProgress: Task<WireConnection, any Error>?
    /// `run()` waiting for that dial, and which dial it waits for: `abandonDial` resumes it at
    /// once and bumps the generation, so the dial's late result is closed, not used.
    private var dialWaiter: CheckedContinuation<WireConnection, any Error>?
    private var dialGeneration: UInt64 = 0
    /// Called each time a connection comes up (a Raft peer asks again for votes it may have lost).
    private let onConnected: @Sendable () -> Void
    private var target: Target
    private var current: WireConnection? {
        didSet { live.withLock { $0 = current } }
    }
    /// `current`, readable without entering the actor (the gateway's data path reads it on its loop).
    private nonisolated let live = Mutex<WireConnection?>(nil)
    private var waiters: [UInt64: CheckedContinuation<WireConnection, any Error>] = [:]
    private var nextWaiterID: UInt64 = 0
    private var wakeDialler: CheckedContinuation<Void, Never>?
    private var pauseGeneration: UInt64 = 0
    /// Connections made since start; tests and metrics read it.
    public private(set) var connectCount = 0

    public init(
        target: Target,
        configuration: WireConfiguration,
        service: (any WireService)? = nil,
        backoff: Backoff = Backoff(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "junction.wire.client"),
        onConnected: @escaping @Sendable () -> Void = {}
    ) {
        self.onConnected = onConnected
        self.target = target
        self.configuration = configuration
        self.service = service
        self.backoff = backoff
        self.group = group
        self.logger = logger
    }

    public var currentTarget: Target { target }

    /// The live connection right now, if there is one, without waiting or entering the actor.
    public nonisolated var liveConnection: WireConnection? {
        guard let connection = live.withLock({ $0 }), connection.isActive else { return nil }
        return connection
    }
    public var isConnected: Bool { current?.isActive ?? false }
    /// A dial is under way (connecting or in its handshake), not failed and not backing off.
    public var isDialling: Bool { dialInProgress != nil }

    /// Dials and redials until cancelled. Run it in a task group beside the work that uses it.
    public func run() async {
        while !Task.isCancelled {
            let dialled = target
            do {
                // The dial runs as its own task so that `retarget` can abandon it: a target that
                // accepts TCP but never answers the handshake would otherwise hold the client for
                // the whole handshake timeout. Its lifetime ends with this await.
                let (configuration, service, group, logger) = (configuration, service, group, logger)
                let dial = Task {
                    try await WireClient.connect(
                        host: dialled.host, port: dialled.port, configuration: configuration, service: service, group: group, logger: logger)
                }
                dialInProgress = dial
                let connection = try await withTaskCancellationHandler {
                    try await outcome(of: dial)
                } onCancel: {
                    dial.cancel()
                    Task { await self.abandonDial() }
                }
                dialInProgress = nil
                guard dialled == target, !Task.isCancelled else {
                    connection.close(reason: "target changed")
                    continue
                }
                connectCount += 1
                backoff.reset()
                publish(connection)
                logger.info("wire connected", metadata: ["target": "\(dialled)"])
                onConnected()
                await withTaskCancellationHandler {
                    await connection.serve()
                    try? await connection.closeFuture.get()
                } onCancel: {
                    connection.close(reason: "client shutting down")
                }
                if current === connection { current = nil }
                logger.info("wire disconnected", metadata: ["target": "\(dialled)"])
            } catch {
                dialInProgress = nil
                logger.debug("wire connect failed", metadata: ["target": "\(dialled)", "error": "\(error)"])
                // An abandoned dial (retargeted) tries the new target at once.
                if dialled == target { await pause(backoff.next()) }
            }
        }
        current?.close(reason: "client shutting down")
        current = nil
        for (_, waiter) in waiters { waiter.resume(throwing: CancellationError()) }
        waiters.removeAll()
    }

    /// The dial's connection, unless the dial is abandoned first (`abandonDial`). A TCP connect
    /// to a host that is cut off cannot be cancelled: it would hold the client for the whole
    /// connect timeout after a retarget. An abandoned dial that connects later is closed.
    private func outcome(of dial: Task<WireConnection, any Error>) async throws -> WireConnection {
        dialGeneration += 1
        let generation = dialGeneration
        return try await withCheckedThrowingContinuation { continuation in
            dialWaiter = continuation
            Task { self.dialEnded(await dial.result, generation: generation) }
        }
    }

    private func dialEnded(_ result: Result<WireConnection, any Error>, generation: UInt64) {
        guard generation == dialGeneration, let waiter = dialWaiter else {
            if case .success(let connection) = result { connection.close(reason: "dial abandoned") }
            return
        }
        dialWaiter = nil
        waiter.resume(with: result)
    }

    private func abandonDial() {
        dialGeneration += 1
        dialWaiter?.resume(throwing: CancellationError())
        dialWaiter = nil
    }

    /// Points the client at another endpoint (e.g. the Raft leader a NotLeader reply named).
    /// The old connection is closed, a dial under way abandoned, and the new target dialled
    /// without waiting out the backoff.
    public func retarget(_ newTarget: Target) {
        guard newTarget != target else { return }
        target = newTarget
        backoff.reset()
        dialInProgress?.cancel()
        abandonDial()
        current?.close(reason: "retargeted to \(newTarget)")
        current = nil
        wakeDialler?.resume()
        wakeDialler = nil
    }

    /// The live connection, waiting up to `timeout` for one; throws UNAVAILABLE after that.
    public func connection(within timeout: Duration) async throws -> WireConnection {
        if let current, current.isActive { return current }
        let id = nextWaiterID
        nextWaiterID += 1
        return try await withThrowingTaskGroup(of: WireConnection.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await self.waitForConnection(id: id)
                } onCancel: {
                    Task { await self.dropWaiter(id: id) }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw WireError(.unavailable, "no connection to \(await self.currentTarget) within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// Sends a request over the live connection (waiting up to `timeout` for one).
    public func call(_ request: Envelope.Body, timeout: Duration? = nil) async throws -> Envelope.Body {
        let timeout = timeout ?? configuration.defaultCallTimeout
        let connection = try await connection(within: timeout)
        return try await connection.call(request, timeout: timeout)
    }

    private func waitForConnection(id: UInt64) async throws -> WireConnection {
        if let current, current.isActive { return current }
        try Task.checkCancellation()
        return try await withCheckedThrowingContinuation { waiters[id] = $0 }
    }

    private func dropWaiter(id: UInt64) {
        waiters.removeValue(forKey: id)?.resume(throwing: CancellationError())
    }

    private func publish(_ connection: WireConnection) {
        current = connection
        let ready = waiters
        waiters.removeAll()
        for (_, waiter) in ready { waiter.resume(returning: connection) }
    }

    /// Sleeps for the backoff, but wakes early on retarget or cancellation. The generation keeps a
    /// timer of an earlier pause from cutting a later one short.
    private func pause(_ duration: Duration) async {
        pauseGeneration += 1
        let generation = pauseGeneration
        let timer = Task {
            try? await Task.sleep(for: duration)
            self.wake(generation)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { wakeDialler = $0 }
        } onCancel: {
            timer.cancel()
        }
    }

    private func wake(_ generation: UInt64) {
        guard generation == pauseGeneration else { return }
        wakeDialler?.resume()
        wakeDialler = nil
    }
}
