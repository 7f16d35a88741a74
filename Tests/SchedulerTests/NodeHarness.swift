import ProcessHarness
import Foundation
import Logging
import Scheduler
import Wire

/// A one-member scheduler group in this process, on an ephemeral loopback port: it elects itself
/// at once, so the node's wire services can be tested without a trio.
struct SingleNode {
    let port: Int
    let secret = "single-node-test-secret"
    let directory: String
    /// The HTTP port of `/metrics`, when asked for (`withMetrics`).
    var metricsPort: Int?

    /// Runs `body` against a started node and stops the node afterwards.
    static func with<T: Sendable>(
        heartbeatTimeoutMilliseconds: Int = 60_000, policy: String = "prefix-cache", withMetrics: Bool = false,
        _ body: @Sendable (SingleNode) async throws -> T
    ) async throws -> T {
        let directory = NSTemporaryDirectory() + "junction-node-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try SchedulerConfiguration.parse(
            [
                // It listens on a port the system gives it (`listen` port 0), not one picked free
                // beforehand, which another test could take first. No peer dials the address.
                "cluster": ["secret": "single-node-test-secret", "schedulers": [["id": 1, "address": "127.0.0.1:1"]]],
                "scheduler": [
                    "listen": "127.0.0.1:0", "data_dir": directory, "tick_ms": 10, "heartbeat_timeout_ms": heartbeatTimeoutMilliseconds,
                    "report_interval_ms": min(250, heartbeatTimeoutMilliseconds / 2),
                ],
                "llm_scheduler": ["policy": policy],
            ], id: 1)
        let node = try SchedulerNode(config: config, id: 1, logger: Logger(label: "test-node"))
        let (ports, portQueue) = AsyncStream<Int>.makeStream()
        let (metricsPorts, metricsPortQueue) = AsyncStream<Int>.makeStream()
        return try await withThrowingTaskGroup { group in
            group.addTask {
                // However the node's run ends (a port it could not bind), the waits below end too:
                // a node that failed to start is an error naming why, not a test that never ends.
                defer {
                    portQueue.finish()
                    metricsPortQueue.finish()
                }
                try await node.run(
                    metricsAt: withMetrics ? ("127.0.0.1", 0) : nil, onListening: { portQueue.yield($0) },
                    onMetricsListening: { metricsPortQueue.yield($0) })
                return nil as T?
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { return try await startFailure(&group) }
            var harness = SingleNode(port: port, directory: directory)
            if withMetrics {
                var metricsIterator = metricsPorts.makeAsyncIterator()
                guard let metricsPort = await metricsIterator.next() else { return try await startFailure(&group) }
                harness.metricsPort = metricsPort
            }
            try await harness.waitForLeadership()
            let result = try await body(harness)
            group.cancelAll()
            while let _ = try await group.next() {}
            return result
        }
    }

    /// The node's run ended before it listened: its error, or one saying so.
    private static func startFailure<T>(_ group: inout ThrowingTaskGroup<T?, any Error>) async throws -> T {
        while let _ = try await group.next() {}
        throw WireError(.internal, "the node stopped before it was listening")
    }

    func connect(role: Role = .gateway, nodeID: String = "test") async throws -> WireConnection {
        try await WireClient.connect(
            host: "127.0.0.1", port: port, configuration: WireConfiguration(role: role, nodeID: nodeID, clusterSecret: secret))
    }

    /// Registers instance `id` as its own agent would: over an agent connection named `id`.
    func register(_ id: String, model: String = "m") async throws {
        let agent = try await connect(role: .agent, nodeID: id)
        defer { agent.close() }
        try await SchedulerTests.register(id, model: model, on: agent)
    }

    private func waitForLeadership() async throws {
        let connection = try await connect(role: .operator)
        defer { connection.close() }
        for _ in 0..<200 {
            if case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())), status.leaderID == 1 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw WireError(.unavailable, "the single node did not become leader")
    }
}

func register(_ id: String, model: String = "m", on connection: WireConnection) async throws {
    let reply = try await connection.call(
        .registerInstance(
            RegisterInstance(instance: Instance(id: id, endpointURL: "http://127.0.0.1:9/\(id)", model: model, engine: .vllm))))
    guard case .registerReply = reply else { throw WireError(.internal, "register \(id): \(reply.name)") }
}

extension LocalSchedulerTrio {
    /// Registers instance `id` at scheduler `node` as its own agent would: over an agent
    /// connection named `id`.
    nonisolated func register(_ id: String, model: String = "m", at node: UInt64) async throws {
        let agent = try await connect(node, role: .agent, nodeID: id)
        defer { agent.close() }
        try await SchedulerTests.register(id, model: model, on: agent)
    }
}
