import Synchronization
import NIOCore
import NIOPosix
import Testing
@testable import Wire

let testSecret = "test-cluster-secret"

func testConfiguration(role: Role = .bench, nodeID: String = "test", secret: String = testSecret) -> WireConfiguration {
    var configuration = WireConfiguration(role: role, nodeID: nodeID, clusterSecret: secret)
    configuration.defaultCallTimeout = .seconds(5)
    // The tests that are about the handshake timeout set their own; the others must not depend on
    // a loaded machine reading a peer's first bytes within the production default of 1 s.
    configuration.handshakeTimeout = .seconds(20)
    return configuration
}

/// A service for tests: answers schedule requests by echoing the model, status requests with a
/// fixed reply, streams InstanceTables, collects reports and one-way messages.
final class RecordingService: WireService {
    let received = Recorder<Envelope.Body>()
    let replyDelay: Duration

    init(replyDelay: Duration = .zero) {
        self.replyDelay = replyDelay
    }

    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
        received.append(request)
        if replyDelay > .zero { try await Task.sleep(for: replyDelay) }
        switch request {
        case .scheduleRequest(let schedule):
            if schedule.model == "unknown" { throw WireError(.notFound, "no instance serves model unknown") }
            return .scheduleReply(ScheduleReply(outcome: .assigned(Assignment(
                instanceID: "i-\(schedule.model)", endpointURL: "http://127.0.0.1:9/\(schedule.requestID)",
                engine: .vllm, cachedChunks: UInt32(schedule.prefixHashes.count)))))
        case .statusRequest:
            return .statusReply(StatusReply(nodeID: 1, leaderID: 1, term: 7, raftState: "leader"))
        case .drainRequest:
            return .notLeader(NotLeader(leaderID: 2, leaderAddress: "127.0.0.1:7002", term: 7))
        default:
            throw WireError(.unimplemented, "test service does not serve \(request.name)")
        }
    }

    func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws {
        received.append(open)
        switch open {
        case .subscribeInstances(let subscribe):
            for version in (subscribe.knownVersion + 1)...(subscribe.knownVersion + 3) {
                try await stream.send(.instanceTable(InstanceTable(version: version, instances: [
                    Instance(id: "i-\(version)", endpointURL: "http://127.0.0.1:8000", model: "m", engine: .sglang, state: .up)
                ])))
            }
        case .openReportStream:
            for try await item in stream.inbound { received.append(item) }
        case .subscribeCapacity:
            // Stays open until the peer cancels.
            for try await _ in stream.inbound {}
        default:
            throw WireError(.unimplemented, "no such stream")
        }
    }

    func receiveOneWay(_ message: Envelope.Body, from peer: PeerIdentity) -> WireError? {
        received.append(message)
        return nil
    }
}

/// A thread-safe list that tests can wait on.
final class Recorder<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])

    func append(_ item: T) {
        items.withLock { $0.append(item) }
    }

    var all: [T] { items.withLock { $0 } }

    /// Polls until `predicate` holds or `timeout` passes.
    func wait(timeout: Duration = .seconds(5), until predicate: ([T]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if predicate(all) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return predicate(all)
    }
}

/// Runs `body` with a real server on 127.0.0.1 and an ephemeral port, then shuts the server down.
func withServer<R: Sendable>(
    service: any WireService = RecordingService(),
    configuration: WireConfiguration = testConfiguration(role: .scheduler, nodeID: "1"),
    _ body: @Sendable (WireServer) async throws -> R
) async throws -> R {
    let server = try await WireServer.bind(host: "127.0.0.1", port: 0, configuration: configuration, service: service)
    return try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask {
            try await server.run()
            return nil
        }
        defer { group.cancelAll() }
        let result = try await body(server)
        server.close()
        return result
    }
}

func connect(to server: WireServer, configuration: WireConfiguration = testConfiguration()) async throws -> WireConnection {
    try await WireClient.connect(host: "127.0.0.1", port: server.port, configuration: configuration)
}

/// Waits for a future with a bound, so a hung server fails the test instead of hanging it.
func withTimeout<R: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: R.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(timeout: timeout)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

struct TimeoutError: Error, CustomStringConvertible {
    let timeout: Duration
    var description: String { "timed out after \(timeout)" }
}
