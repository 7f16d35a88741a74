import Foundation
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// Three real `junction scheduler` processes on loopback, with a config file and a data directory
/// per node in a temporary directory, logs per node, and kill/restart by PID. Used by the
/// failover tests and by `junction bench schedule`.
public actor LocalSchedulerTrio {
    public nonisolated let binary: String
    public nonisolated let directory: String
    public nonisolated let configPath: String
    public nonisolated let secret = "local-trio-secret-0123"
    public nonisolated let ports: [UInt64: Int]
    private var processes: [UInt64: SpawnedProcess] = [:]

    /// `binary` is the `junction` executable to run as `junction scheduler`.
    public init(binary: String, tickMilliseconds: Int = 50, electionTicks: Int = 10, heartbeatTimeoutMilliseconds: Int = 600_000) throws {
        self.binary = binary
        directory = NSTemporaryDirectory() + "junction-trio-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var ports: [UInt64: Int] = [:]
        for id: UInt64 in 1...3 { ports[id] = try freeLoopbackPort() }
        self.ports = ports
        configPath = directory + "/cluster.json"
        let config: [String: Any] = [
            "cluster": [
                "secret": secret,
                "schedulers": ports.sorted { $0.key < $1.key }.map { ["id": Int($0.key), "address": "127.0.0.1:\($0.value)"] },
            ],
            "scheduler": [
                "data_dir": directory + "/data-{id}", "tick_ms": tickMilliseconds, "election_ticks": electionTicks,
                // Without agents the default keeps registered instances up for the whole run.
                "heartbeat_timeout_ms": heartbeatTimeoutMilliseconds,
            ],
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
    }

    public func start(_ id: UInt64) throws {
        processes[id] = try SpawnedProcess(
            name: "scheduler-\(id)", binary: binary,
            arguments: ["scheduler", "--config", configPath, "--id", String(id), "--log-level", "info"], directory: directory)
    }

    /// Sends `signal` and, for a killing signal, waits for the process to go.
    public func signal(_ id: UInt64, _ signal: Int32 = SIGKILL) {
        processes[id]?.stop(signal)
        if signal == SIGKILL || signal == SIGTERM { processes[id] = nil }
    }

    public func stopAll() {
        for id in processes.keys { signal(id, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func logs() -> String {
        (1...3).map { id in
            let text = (try? String(contentsOfFile: directory + "/scheduler-\(id).log", encoding: .utf8)) ?? ""
            return "--- scheduler \(id) ---\n" + text.split(separator: "\n").suffix(40).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    public nonisolated func connect(_ id: UInt64, role: Role = .gateway) async throws -> WireConnection {
        try await WireClient.connect(
            host: "127.0.0.1", port: ports[id]!, configuration: WireConfiguration(role: role, nodeID: "local-trio", clusterSecret: secret),
            connectTimeout: .milliseconds(500))
    }

    public nonisolated func status(_ id: UInt64) async -> StatusReply? {
        guard let connection = try? await connect(id, role: .operator) else { return nil }
        defer { connection.close() }
        guard case .statusReply(let status) = try? await connection.call(.statusRequest(StatusRequest()), timeout: .milliseconds(500)) else {
            return nil
        }
        return status
    }

    /// The node among `ids` that says it leads and that the others name as leader.
    public nonisolated func waitForLeader(among ids: [UInt64], within limit: Duration = .seconds(10)) async throws -> UInt64 {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            var statuses: [StatusReply] = []
            for id in ids { if let status = await status(id) { statuses.append(status) } }
            if statuses.count == ids.count, let leader = statuses.first(where: { $0.raftState == "leader" }),
                statuses.allSatisfy({ $0.leaderID == leader.nodeID })
            {
                return leader.nodeID
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError(.unavailable, "no leader among \(ids) within \(limit)")
    }

    /// Runs `junction ctl` with this trio's config and returns its standard output.
    public func ctl(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["ctl"] + arguments + ["--config", configPath]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
