import ProcessHarness
import Foundation
import Seeded
import Synchronization
import Wire

/// `schedule` over the wire against the leader of a real trio (three `junction scheduler`
/// processes on loopback, Raft on file storage with fsync), with a registry of instances and an
/// affinity table filled by a chat-like warm-up. The baseline, measured in the same run by the
/// same client code, is a wire server in this process that answers every schedule call with a
/// fixed assignment: the difference is what deciding costs the leader.
public enum ScheduleBenchmark {
    public static func report(binary: String, calls: Int, instances: Int, warmUp: Int) async throws {
        let trio = try LocalSchedulerTrio(binary: binary)
        do {
            try await run(trio, calls: calls, instances: instances, warmUp: warmUp)
        } catch {
            print("failed: \(error)\n\(await trio.logs())")
            await trio.stopAll()
            throw error
        }
        await trio.stopAll()
    }

    private static func run(_ trio: LocalSchedulerTrio, calls: Int, instances: Int, warmUp: Int) async throws {
        for id: UInt64 in 1...3 { try await trio.start(id) }
        let leader = try await trio.waitForLeader(among: [1, 2, 3])
        let client = try await trio.connect(leader)
        for index in 0..<instances {
            // Each instance registers as its own agent would: only it may.
            let agent = try await trio.connect(leader, role: .agent, nodeID: "engine-\(index)")
            defer { agent.close() }
            let reply = try await agent.call(
                .registerInstance(
                    RegisterInstance(
                        instance: Instance(
                            id: "engine-\(index)", endpointURL: "http://10.0.0.\(index % 250):8000", model: "m", engine: .vllm))))
            guard case .registerReply = reply else { throw WireError(.internal, "register: \(reply.name)") }
        }
        let requests = ChatLikeRequests(seed: 42)
        _ = try await WireRoundTripBenchmark.measure("warm-up", calls: warmUp, inFlight: 64) {
            try await scheduleAndFinish(requests.next(), on: client)
        }
        guard case .statusReply(let status) = try await client.call(.statusRequest(StatusRequest())) else { return }
        let entries = status.instances.reduce(0) { $0 + Int($1.affinityEntries) }

        let baselineServer = try await WireServer.bind(
            host: "127.0.0.1", port: 0, configuration: WireConfiguration(role: .scheduler, nodeID: "1", clusterSecret: trio.secret),
            service: WireRoundTripBenchmark.ScheduleService())
        var results: [WireRoundTripBenchmark.Result] = []
        try await withThrowingTaskGroup { group in
            group.addTask { try await baselineServer.run() }
            let baseline = try await WireClient.connect(
                host: "127.0.0.1", port: baselineServer.port,
                configuration: WireConfiguration(role: .gateway, nodeID: "bench", clusterSecret: trio.secret))
            for inFlight in [1, 64] {
                results.append(
                    try await WireRoundTripBenchmark.measure("junction scheduler leader", calls: calls, inFlight: inFlight) {
                        try await scheduleAndFinish(requests.next(), on: client)
                    })
                results.append(
                    try await WireRoundTripBenchmark.measure("baseline: fixed answer, same process", calls: calls, inFlight: inFlight) {
                        try await scheduleAndFinish(requests.next(), on: baseline)
                    })
            }
            baseline.close()
            baselineServer.close()
            group.cancelAll()
        }
        client.close()

        print("schedule over the wire: \(calls) calls per row; the leader of three `junction scheduler` processes on")
        print("127.0.0.1 (prefix-cache, \(instances) instances, \(entries) affinity entries after \(warmUp) warm-up calls),")
        print("each call followed by a one-way finish; 32-chunk prompts, half repeating a conversation.\n")
        print("| target | in flight | calls/s | p50 | p90 | p99 | max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in results {
            print(
                "| \(r.name) | \(r.inFlight) | \(String(format: "%.0f", r.callsPerSecond)) | \(formatMicros(r.latency.p50)) | \(formatMicros(r.latency.p90)) | \(formatMicros(r.latency.p99)) | \(formatMicros(r.latency.max)) |"
            )
        }
        print("")
        for inFlight in [1, 64] {
            let ours = results.first { $0.inFlight == inFlight && $0.name.hasPrefix("junction") }!
            let base = results.first { $0.inFlight == inFlight && $0.name.hasPrefix("baseline") }!
            print(
                String(
                    format: "in flight %d: leader/baseline p50 latency %.2fx, throughput %.2fx", inFlight,
                    ours.latency.p50 / base.latency.p50, ours.callsPerSecond / base.callsPerSecond))
        }
    }

    private static func scheduleAndFinish(_ request: ScheduleRequest, on connection: WireConnection) async throws {
        let reply = try await connection.call(.scheduleRequest(request))
        guard case .scheduleReply(let answer) = reply, case .assigned(let assignment) = answer.outcome else {
            throw WireError(.internal, "schedule answered \(reply)")
        }
        try await connection.sendOneWay(.finishRequest(FinishRequest(requestID: request.requestID, instanceID: assignment.instanceID, outcome: .ok)))
    }
}

/// Schedule requests shaped like multi-turn chat: 8 shared system prompts of 8 chunks, then 24
/// chunks of conversation; half the requests repeat one of the last 4,096 conversations.
final class ChatLikeRequests: Sendable {
    private let state: Mutex<(rng: SplitMix64, served: [[UInt64]], count: Int)>
    private let systemPrompts: [[UInt64]]

    init(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        systemPrompts = (0..<8).map { _ in (0..<8).map { _ in rng.next() } }
        state = Mutex((rng, [], 0))
    }

    func next() -> ScheduleRequest {
        state.withLock { state in
            state.count += 1
            let hashes: [UInt64]
            if state.count % 2 == 0, !state.served.isEmpty {
                hashes = state.served[Int(state.rng.next() % UInt64(state.served.count))]
            } else {
                hashes = systemPrompts[Int(state.rng.next() % 8)] + (0..<24).map { _ in state.rng.next() }
                if state.served.count < 4_096 { state.served.append(hashes) } else { state.served[state.count % 4_096] = hashes }
            }
            return ScheduleRequest(requestID: "b\(state.count)", model: "m", prefixHashes: hashes, promptTokens: 32 * 64)
        }
    }
}
