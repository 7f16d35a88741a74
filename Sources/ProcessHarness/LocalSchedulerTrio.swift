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
    /// Whether each node serves `/metrics` (on a port of its choosing: `metricsURL`).
    public nonisolated let withMetrics: Bool
    /// With a CA, the wire runs mutual TLS: each node has a certificate of it (`cluster.tls` with
    /// `{id}` in the paths), `ctl` its own config and certificate, and `connect` issues one for
    /// whatever role and id it dials as.
    public nonisolated let pki: LocalPKI?
    /// The config `junction ctl` runs with: the trio's, or with TLS a copy naming ctl's certificate.
    public nonisolated let ctlConfigPath: String

    /// `binary` is the `junction` executable to run as `junction scheduler`.
    public init(
        binary: String, tickMilliseconds: Int = 50, electionTicks: Int = 10, heartbeatTimeoutMilliseconds: Int = 600_000, withMetrics: Bool = false,
        pki: LocalPKI? = nil
    ) throws {
        self.binary = binary
        self.withMetrics = withMetrics
        self.pki = pki
        directory = NSTemporaryDirectory() + "junction-trio-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var ports: [UInt64: Int] = [:]
        // A fourth port for a newcomer (`startNewMember`): not in the trio's config.
        for id: UInt64 in 1...4 { ports[id] = try freeLoopbackPort() }
        self.ports = ports
        configPath = directory + "/cluster.json"
        ctlConfigPath = pki == nil ? configPath : directory + "/ctl.json"
        var tls: [String: String]?
        if let pki {
            let ca = try pki.writeCA(to: directory)
            for id: UInt64 in 1...4 { try pki.write([.init(role: .scheduler, nodeID: String(id))], as: "scheduler-\(id)", to: directory) }
            try pki.write([.init(role: .operator, nodeID: "ctl")], as: "ctl", to: directory)
            tls = ["ca": ca, "certificate": directory + "/scheduler-{id}.pem", "key": directory + "/scheduler-{id}.key"]
        }
        let secret = secret
        func config(_ members: ClosedRange<UInt64>, tls: [String: String]?) -> [String: Any] {
            var cluster: [String: Any] = [
                "secret": secret,
                "schedulers": members.map { ["id": Int($0), "address": "127.0.0.1:\(ports[$0]!)"] },
            ]
            cluster["tls"] = tls
            return [
                "cluster": cluster,
                "scheduler": [
                    "data_dir": directory + "/data-{id}", "tick_ms": tickMilliseconds, "election_ticks": electionTicks,
                    // Without agents the default keeps registered instances up for the whole run.
                    "heartbeat_timeout_ms": heartbeatTimeoutMilliseconds,
                ],
            ]
        }
        try JSONSerialization.data(withJSONObject: config(1...3, tls: tls)).write(to: URL(fileURLWithPath: configPath))
        try JSONSerialization.data(withJSONObject: config(1...4, tls: tls)).write(to: URL(fileURLWithPath: directory + "/cluster-4.json"))
        if var ctlTLS = tls {
            ctlTLS["certificate"] = directory + "/ctl.pem"
            ctlTLS["key"] = directory + "/ctl.key"
            try JSONSerialization.data(withJSONObject: config(1...3, tls: ctlTLS)).write(to: URL(fileURLWithPath: ctlConfigPath))
        }
    }

    /// Starts node 4 with an empty directory and a config that lists it (the trio's does not):
    /// a newcomer for `junction ctl add-member` or `replace-member` to bring in.
    public func startNewMember() throws {
        processes[4] = try SpawnedProcess(
            name: "scheduler-4", binary: binary,
            arguments: ["scheduler", "--config", directory + "/cluster-4.json", "--id", "4", "--log-level", "info"], directory: directory)
    }

    /// Runs `body` against a new trio of `binary`, records a failure with the trio's logs, and
    /// stops every process and removes the directory whatever happens.
    public static func with(binary: String, _ body: (LocalSchedulerTrio) async throws -> Void) async throws {
        let trio = try LocalSchedulerTrio(binary: binary)
        let outcome: Result<Void, TrioFailure>
        do {
            try await body(trio)
            outcome = .success(())
        } catch {
            outcome = .failure(TrioFailure(error: error, logs: await trio.logs()))
        }
        await trio.stopAll()
        try outcome.get()
    }

    public struct TrioFailure: Error, CustomStringConvertible {
        public var error: any Error
        public var logs: String
        public var description: String { "\(error)\n\(logs)" }
    }

    public func start(_ id: UInt64) throws {
        processes[id] = try SpawnedProcess(
            name: "scheduler-\(id)", binary: binary,
            arguments: ["scheduler", "--config", configPath, "--id", String(id), "--log-level", "info"]
                + (withMetrics ? ["--metrics-listen", "127.0.0.1:0"] : []),
            directory: directory)
    }

    /// Where node `id` serves `/metrics` (a trio made `withMetrics`, node started).
    public func metricsURL(_ id: UInt64) async throws -> String {
        guard let process = processes[id] else { throw SpawnError.notPrinted("scheduler-\(id) (not running)", "metrics listening on ") }
        return try await process.metricsURL()
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
        (1...4).map { id in
            let text = (try? String(contentsOfFile: directory + "/scheduler-\(id).log", encoding: .utf8)) ?? ""
            return "--- scheduler \(id) ---\n" + text.split(separator: "\n").suffix(40).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    public nonisolated func connect(_ id: UInt64, role: Role = .gateway, nodeID: String = "local-trio") async throws -> WireConnection {
        var configuration = WireConfiguration(role: role, nodeID: nodeID, clusterSecret: secret)
        configuration.tls = try pki?.wireTLS(for: .init(role: role, nodeID: nodeID))
        return try await WireClient.connect(host: "127.0.0.1", port: ports[id]!, configuration: configuration, connectTimeout: .milliseconds(500))
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
        try ctlRun(arguments).output
    }

    /// Runs `junction ctl` and returns its standard output, or throws with its standard error
    /// if it exits non-zero.
    public func ctlSucceeding(_ arguments: [String]) throws -> String {
        let (status, output, errors) = try ctlRun(arguments)
        guard status == 0 else { throw WireError(.internal, "junction ctl \(arguments.joined(separator: " ")) exited \(status): \(errors)\n\(output)") }
        return output
    }

    private func ctlRun(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["ctl"] + arguments + ["--config", ctlConfigPath]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), String(decoding: errors, as: UTF8.self))
    }
}
