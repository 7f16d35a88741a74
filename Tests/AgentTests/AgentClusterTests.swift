import ProcessHarness
import PromText
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import Wire

#if canImport(Glibc)
import Glibc
#endif


/// A trio, one simulator per dialect and an agent beside each, all real processes on loopback.
/// Agents run with the default timings (250 ms scrapes, two failures make an engine down).
@Suite(.serialized, .timeLimit(.minutes(3))) struct AgentClusterTests {
    static let dialects = ["vllm", "sglang", "bladellm"]

    final class Cluster: @unchecked Sendable {
        // Safe: the test drives it from one task at a time.
        let trio: LocalSchedulerTrio
        var simulators: [String: SpawnedProcess] = [:]
        var agents: [String: SpawnedProcess] = [:]
        var ports: [String: Int] = [:]

        init() throws {
            trio = try LocalSchedulerTrio(binary: builtJunctionBinary(), heartbeatTimeoutMilliseconds: 2_000, withMetrics: true)
            for dialect in AgentClusterTests.dialects { ports[dialect] = try freeLoopbackPort() }
        }

        func instanceID(_ dialect: String) -> String { "127.0.0.1-\(ports[dialect]!)" }
        func url(_ dialect: String) -> String { "http://127.0.0.1:\(ports[dialect]!)" }

        /// Starts the dialect's simulator on its port (the one its agent watches, kept across a
        /// restart) and waits until it listens, retrying while something else holds the port.
        func startSimulator(_ dialect: String) async throws {
            let marker = "engine-sim listening on "
            for attempt in 1...10 {
                let simulator = try SpawnedProcess(
                    name: "sim-\(dialect)", binary: builtJunctionBinary(),
                    arguments: ["engine-sim", "--dialect", dialect, "--port", String(ports[dialect]!), "--slowness", "20"],
                    directory: trio.directory)
                simulators[dialect] = simulator
                do {
                    _ = try await simulator.printedWord(after: marker)
                    return
                } catch let error as SpawnError where attempt < 10 && !simulator.isRunning {
                    print("sim-\(dialect) did not start (\(error)), retrying")
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }

        func startAgent(_ dialect: String) throws {
            agents[dialect] = try SpawnedProcess(
                name: "agent-\(dialect)", binary: builtJunctionBinary(),
                arguments: ["agent", "--engine", url(dialect), "--config", trio.configPath, "--log-level", "info", "--metrics-listen", "127.0.0.1:0"],
                directory: trio.directory)
        }

        /// The leader's id, from the statuses.
        func leaderID() async -> UInt64? {
            for id: UInt64 in 1...3 {
                if let status = await trio.status(id), status.raftState == "leader" { return id }
            }
            return nil
        }

        func logs() async -> String {
            (simulators.values.map { $0.log() } + agents.values.map { $0.log() }).joined(separator: "\n") + "\n" + (await trio.logs())
        }

        func stopAll() async {
            for process in Array(agents.values) + Array(simulators.values) { process.stop() }
            await trio.stopAll()
        }

        /// The leader's view of the instances.
        func leaderStatus() async -> StatusReply? {
            for id: UInt64 in 1...3 {
                if let status = await trio.status(id), status.raftState == "leader" { return status }
            }
            return nil
        }

        func instance(_ dialect: String, in status: StatusReply) -> InstanceStatus? {
            status.instances.first { $0.instance?.id == instanceID(dialect) }
        }

        /// Polls the leader's status until `condition` holds; returns how long it took.
        func waitUntil(
            within limit: Duration, _ what: String, _ condition: (StatusReply) -> Bool
        ) async throws -> Duration {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < limit {
                if let status = await leaderStatus(), condition(status) { return ContinuousClock.now - start }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw WireError(.timeout, "not within \(limit): \(what)")
        }
    }

    /// One HTTP GET: status and body.
    static func get(_ url: String) async throws -> (status: Int, body: String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: url)!)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// Polls `url` until it answers `status` (10 s at most).
    static func waitForStatus(_ url: String, _ status: Int) async throws {
        let start = ContinuousClock.now
        var last = 0
        while ContinuousClock.now - start < .seconds(10) {
            last = (try? await get(url).status) ?? 0
            if last == status { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError(.timeout, "\(url) answers \(last), not \(status)")
    }

    /// The value of the first sample of `name` whose labels include `labels`, on the page at `url`.
    static func metric(_ url: String, _ name: String, _ labels: [String: String] = [:]) async throws -> Double? {
        let page = try PromTextParser.parse(try await get(url + "/metrics").body)
        return page.samples(named: name).first { sample in labels.allSatisfy { sample.label($0.key) == $0.value } }?.value
    }

    /// Polls `url`'s metric until `condition` holds on its value.
    static func waitForMetric(
        _ url: String, _ name: String, _ labels: [String: String] = [:], within limit: Duration = .seconds(10),
        _ condition: (Double) -> Bool
    ) async throws {
        try await waitForMetric({ url }, name, labels, within: limit, condition)
    }

    /// The same, asking `url` anew for each read (a leader's page, wherever it is now).
    static func waitForMetric(
        _ url: () async throws -> String, _ name: String, _ labels: [String: String] = [:], within limit: Duration = .seconds(10),
        _ condition: (Double) -> Bool
    ) async throws {
        let start = ContinuousClock.now
        var last: Double?
        var lastError: (any Error)?
        while ContinuousClock.now - start < limit {
            do {
                last = try await metric(try await url(), name, labels)
                if let last, condition(last) { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError(.timeout, "\(name)\(labels) is \(last.map { "\($0)" } ?? "absent") after \(limit) \(lastError.map { "(\($0))" } ?? "")")
    }

    private func run(_ body: (Cluster) async throws -> Void) async throws {
        let cluster = try Cluster()
        do {
            for id: UInt64 in 1...3 { try await cluster.trio.start(id) }
            _ = try await cluster.trio.waitForLeader(among: [1, 2, 3])
            for dialect in Self.dialects {
                try await cluster.startSimulator(dialect)
                try cluster.startAgent(dialect)
            }
            try await body(cluster)
        } catch {
            Issue.record("\(error)\n\(await cluster.logs())")
        }
        await cluster.stopAll()
    }

    @Test func everyDialectIsDetectedRegisteredAndReportedLive() async throws {
        try await run { cluster in
            _ = try await cluster.waitUntil(within: .seconds(20), "three instances up with reports") { status in
                Self.dialects.allSatisfy { dialect in
                    guard let entry = cluster.instance(dialect, in: status) else { return false }
                    return entry.instance?.state == .up && entry.lastReport?.health == .healthy
                }
            }
            let status = try #require(await cluster.leaderStatus())
            let kinds = Self.dialects.map { cluster.instance($0, in: status)?.instance?.engine }
            #expect(kinds == [.vllm, .sglang, .bladellm])
            for dialect in Self.dialects {
                let entry = try #require(cluster.instance(dialect, in: status))
                #expect(entry.instance?.model == "tiny" && entry.instance?.endpointURL == cluster.url(dialect))
                #expect(entry.instance?.kvCapacityTokens ?? 0 > 0, "\(dialect) capacity")
            }

            // Each agent's /metrics: what it watches, its health, its link; the leader's: every
            // engine of every family, in one place.
            var agentURLs: [String: String] = [:]
            for dialect in Self.dialects { agentURLs[dialect] = try await cluster.agents[dialect]!.metricsURL() }
            // The leader's page, looked up for each read: a leader change meanwhile must not fail
            // the test (the new leader shows the engines once their agents report to it).
            let leaderURL: @Sendable () async throws -> String = {
                guard let id = await cluster.leaderID() else { throw WireError(.unavailable, "no leader") }
                return try await cluster.trio.metricsURL(id)
            }
            for dialect in Self.dialects {
                let agent = agentURLs[dialect]!
                #expect(try await Self.metric(agent, "junction_agent_engine_info", ["engine": dialect, "model": "tiny"]) == 1)
                try await Self.waitForMetric(agent, "junction_agent_engine_health", ["state": "healthy"]) { $0 == 1 }
                #expect(try await Self.metric(agent, "junction_agent_registrations_total") ?? 0 >= 1)
                #expect(try await Self.metric(agent, "junction_agent_scrape_seconds_count") ?? 0 > 0)
                try await Self.waitForMetric(agent, "junction_agent_reports_acknowledged_total") { $0 > 0 }
                try await Self.waitForStatus(agent + "/readyz", 200)
                let id = cluster.instanceID(dialect)
                try await Self.waitForMetric(leaderURL, "junction_scheduler_instance_info", ["instance_id": id, "engine": dialect]) { $0 == 1 }
                try await Self.waitForMetric(leaderURL, "junction_scheduler_instance_up", ["instance_id": id]) { $0 == 1 }
                try await Self.waitForMetric(leaderURL, "junction_scheduler_instance_healthy", ["instance_id": id]) { $0 == 1 }
            }

            // Load one engine directly: its running figure reaches the scheduler, and it is the
            // figure the engine's own /metrics shows.
            let sglang = cluster.url("sglang")
            let requests = (0..<4).map { index in
                Task {
                    var request = URLRequest(url: URL(string: sglang + "/v1/completions")!)
                    request.httpMethod = "POST"
                    request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                    request.httpBody = Data("{\"model\":\"tiny\",\"prompt\":\"load \(index)\",\"max_tokens\":400}".utf8)
                    _ = try? await URLSession.shared.data(for: request)
                }
            }
            _ = try await cluster.waitUntil(within: .seconds(5), "sglang reports 4 running") { status in
                cluster.instance("sglang", in: status)?.lastReport?.running == 4
            }
            let (page, _) = try await URLSession.shared.data(from: URL(string: sglang + "/metrics")!)
            let running = try PromTextParser.parse(String(decoding: page, as: UTF8.self)).samples(named: "sglang:num_running_reqs")
            #expect(running.map(\.value) == [4])
            try await Self.waitForMetric(agentURLs["sglang"]!, "junction_agent_engine_running") { $0 == 4 }
            try await Self.waitForMetric(leaderURL, "junction_scheduler_instance_running", ["instance_id": cluster.instanceID("sglang")]) { $0 == 4 }
            for request in requests { request.cancel() }

            // /health failing while the engine still answers: down as unhealthy, then back.
            for dialect in ["sglang", "bladellm"] {
                try await Self.faults(cluster.url(dialect), set: true)
                _ = try await cluster.waitUntil(within: .seconds(3), "\(dialect) marked down by its failing /health") { status in
                    let entry = cluster.instance(dialect, in: status)?.instance
                    return entry?.state == .down && entry?.stateReason.contains("unhealthy") == true
                }
                let agent = agentURLs[dialect]!
                try await Self.waitForMetric(agent, "junction_agent_engine_health", ["state": "unhealthy"]) { $0 == 1 }
                try await Self.waitForStatus(agent + "/readyz", 503)
                try await Self.waitForMetric(leaderURL, "junction_scheduler_instance_up", ["instance_id": cluster.instanceID(dialect)]) { $0 == 0 }
                try await Self.faults(cluster.url(dialect), set: false)
                _ = try await cluster.waitUntil(within: .seconds(3), "\(dialect) back up") { status in
                    cluster.instance(dialect, in: status)?.instance?.state == .up
                }
            }
        }
    }

    private static func faults(_ engine: String, set: Bool) async throws {
        var request = URLRequest(url: URL(string: engine + "/admin/faults")!)
        request.httpMethod = set ? "POST" : "DELETE"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if set { request.httpBody = Data("{\"health_failing\": true}".utf8) }
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
    }

    @Test func engineDeathAndReturnLeaderFailoverAgentDeathAndShutdown() async throws {
        try await run { cluster in
            _ = try await cluster.waitUntil(within: .seconds(20), "three instances up") { status in
                Self.dialects.allSatisfy { cluster.instance($0, in: status)?.instance?.state == .up }
            }
            // A dead engine is out of rotation about one scrape interval (250 ms) after it died:
            // the agent reports a change of health at once. The bound is eight intervals, so
            // a loaded machine does not fail it; the printed time is the figure.
            cluster.simulators["vllm"]!.stop(SIGKILL)
            let down = try await cluster.waitUntil(within: .seconds(5), "the killed engine marked down") { status in
                cluster.instance("vllm", in: status)?.instance?.state == .down
            }
            print("agent: killed engine marked down after \(down)")
            #expect(down < .seconds(2), "engine down after \(down)")
            let reason = await cluster.leaderStatus().flatMap { cluster.instance("vllm", in: $0)?.instance?.stateReason }
            #expect(reason?.contains("unreachable") == true, "reason: \(reason ?? "none")")

            // Back when it restarts.
            try await cluster.startSimulator("vllm")
            let up = try await cluster.waitUntil(within: .seconds(5), "the restarted engine marked up") { status in
                cluster.instance("vllm", in: status)?.instance?.state == .up
            }
            print("agent: restarted engine marked up after \(up)")

            // The scheduler leader dies while agents report: they find the new one and go on.
            let oldLeader = try #require(await cluster.leaderStatus()).nodeID
            await cluster.trio.signal(oldLeader, SIGKILL)
            let moved = try await cluster.waitUntil(within: .seconds(10), "reports reach the new leader") { status in
                status.nodeID != oldLeader
                    && Self.dialects.allSatisfy { dialect in
                        guard let entry = cluster.instance(dialect, in: status) else { return false }
                        return entry.instance?.state == .up && entry.lastReport != nil && entry.reportAgeMs < 1_000
                    }
            }
            print("agent: reports at the new leader \(moved) after kill -9 of scheduler \(oldLeader)")

            // The killed node returns; then the leader freezes (SIGSTOP: its connections stay
            // open, so nothing breaks on the agents' side). Agents hear no acknowledgement, look
            // elsewhere, and report to the next leader.
            try await cluster.trio.start(oldLeader)
            let frozen = try #require(await cluster.leaderStatus()).nodeID
            await cluster.trio.signal(frozen, SIGSTOP)
            let refound = try await cluster.waitUntil(within: .seconds(15), "reports reach a leader other than the frozen one") { status in
                status.nodeID != frozen
                    && Self.dialects.allSatisfy { dialect in
                        guard let entry = cluster.instance(dialect, in: status) else { return false }
                        return entry.instance?.state == .up && entry.lastReport != nil && entry.reportAgeMs < 1_000
                    }
            }
            await cluster.trio.signal(frozen, SIGCONT)
            print("agent: reports at the next leader \(refound) after SIGSTOP of scheduler \(frozen)")

            // A dead agent: the instance goes down by heartbeat timeout (2 s here).
            cluster.agents["bladellm"]!.stop(SIGKILL)
            _ = try await cluster.waitUntil(within: .seconds(8), "a silent instance marked down") { status in
                cluster.instance("bladellm", in: status)?.instance?.state == .down
            }
            let silent = await cluster.leaderStatus().flatMap { cluster.instance("bladellm", in: $0)?.instance?.stateReason }
            #expect(silent == "missed heartbeats")

            // SIGTERM: the agent drains its idle engine and deregisters.
            cluster.agents["sglang"]!.stop(SIGTERM)
            _ = try await cluster.waitUntil(within: .seconds(8), "the stopped agent's instance removed") { status in
                cluster.instance("sglang", in: status) == nil
            }
        }
    }
}
