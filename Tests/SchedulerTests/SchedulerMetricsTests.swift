import AsyncHTTPClient
import Foundation
import PromText
import Raft
import Routing
import SchedulerCore
import Testing
import Wire

@testable import Scheduler

/// The scheduler's metrics page: rendered from an observation (pure), and served for real by a
/// one-member group in process.
@Suite(.timeLimit(.minutes(1))) struct SchedulerMetricsTests {
    private func value(_ page: Exposition, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        page.samples(named: name).first { sample in labels.allSatisfy { sample.label($0.key) == $0.value } }?.value
    }

    private func observation() -> SchedulerObservation {
        let status = SchedulerReplica.Status(
            id: 1, role: .leader, term: 7, leader: 1, commitIndex: 40, appliedIndex: 39, lastIndex: 42, progress: [2: 42, 3: 30],
            membership: Membership(voters: [1, 2, 3], learners: [4]), heardIncarnations: [:], holdsNothing: false)
        let activity = SchedulerReplica.Activity(
            leadersSeen: 3, electionsStarted: 2, preVotesStarted: 4, snapshotsTaken: 1, snapshotsInstalled: 0, snapshotIndex: 20,
            snapshotBytes: 1234, undecodableMembershipEntries: 0, backlog: 5, stopped: false)
        let instances = [
            InstanceRecord(id: "a", endpointURL: "http://a", model: "m", engine: .vllm, state: .up),
            InstanceRecord(id: "b", endpointURL: "http://b", model: "m", engine: .sglang, role: .prefill, state: .down),
            InstanceRecord(id: "c", endpointURL: "http://c", model: "n", engine: .bladellm, state: .draining),
        ]
        return SchedulerObservation(
            clusterName: "prod", status: status, activity: activity, peersConnected: [2: true, 3: false], policy: "prefix-cache",
            instances: instances, affinityEntries: ["a": 17],
            engines: [
                "a": .init(
                    load: EngineLoad(running: 5, waiting: 2, kvUsage: 0.75, promptTokensPerSecond: 900, generationTokensPerSecond: 120),
                    healthy: true, reportAgeSeconds: 0.25, prefixCacheHitRate: 0.4, inFlight: 6)
            ])
    }

    @Test func thePageShowsRaftTheRegistryAndTheEnginesLoad() throws {
        let text = SchedulerMetricsPage.render(observation()).text
        let page = try PromTextParser.parse(text)
        #expect(value(page, "junction_scheduler_raft_term") == 7)
        #expect(value(page, "junction_scheduler_raft_role", ["role": "leader"]) == 1)
        #expect(value(page, "junction_scheduler_raft_role", ["role": "follower"]) == 0)
        #expect(value(page, "junction_scheduler_raft_follower_match_lag_entries", ["peer": "2"]) == 0)
        #expect(value(page, "junction_scheduler_raft_follower_match_lag_entries", ["peer": "3"]) == 12)
        #expect(value(page, "junction_scheduler_raft_peer_connected", ["peer": "3"]) == 0)
        #expect(value(page, "junction_scheduler_raft_members", ["kind": "learner"]) == 1)
        #expect(value(page, "junction_scheduler_raft_leader_changes_total") == 3)
        #expect(value(page, "junction_scheduler_raft_snapshot_bytes") == 1234)
        #expect(value(page, "junction_scheduler_instances", ["state": "down", "role": "prefill"]) == 1)
        #expect(value(page, "junction_scheduler_instances", ["state": "up", "role": "decode"]) == 0, "absent combinations are 0, not missing")
        #expect(value(page, "junction_scheduler_instance_up", ["instance_id": "c"]) == 0)
        #expect(value(page, "junction_scheduler_instance_info", ["instance_id": "b", "engine": "sglang", "role": "prefill"]) == 1)
        #expect(value(page, "junction_scheduler_affinity_entries", ["instance_id": "a"]) == 17)
        #expect(value(page, "junction_scheduler_instance_running", ["instance_id": "a", "model": "m"]) == 5)
        #expect(value(page, "junction_scheduler_instance_kv_usage_ratio", ["instance_id": "a"]) == 0.75)
        #expect(value(page, "junction_scheduler_instance_prefix_cache_hit_ratio", ["instance_id": "a"]) == 0.4)
        #expect(value(page, "junction_scheduler_instance_in_flight", ["instance_id": "a"]) == 6)
        #expect(value(page, "junction_scheduler_instance_running", ["instance_id": "b"]) == nil, "no report, no load series")
        for family in page.families {
            #expect(family.help != nil, "\(family.name) has help")
            for sample in family.samples {
                #expect(sample.label("instance") == nil, "\(sample.name): Prometheus owns the instance label")
                if family.kind == .counter { #expect(sample.name.hasSuffix("_total"), "\(sample.name)") }
            }
        }
    }

    @Test func aFollowerShowsNoEngineLoadAndNoLag() throws {
        var o = observation()
        o.status.role = .follower
        o.status.leader = 2
        o.status.progress = [:]
        o.engines = [:]
        let page = try PromTextParser.parse(SchedulerMetricsPage.render(o).text)
        #expect(value(page, "junction_scheduler_raft_leader_id") == 2)
        #expect(page.samples(named: "junction_scheduler_raft_follower_match_lag_entries").isEmpty)
        #expect(page.samples(named: "junction_scheduler_instance_running").isEmpty)
        #expect(value(page, "junction_scheduler_instance_up", ["instance_id": "a"]) == 1, "the registry is replicated")
    }

    private func get(_ port: Int, _ path: String) async throws -> (status: UInt, body: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(10))
        return (response.status.code, String(buffer: try await response.body.collect(upTo: 8 << 20)))
    }

    @Test func aLiveLeaderServesItsDecisionsWritesAndReports() async throws {
        try await SingleNode.with(withMetrics: true) { node in
            let port = try #require(node.metricsPort)
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            let agent = try await node.connect(role: .agent, nodeID: "a")
            defer { agent.close() }
            let reports = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: "a")))
            try await reports.send(
                .loadReport(LoadReport(instanceID: "a", health: .healthy, running: 3, waiting: 2, kvUsage: 0.5, prefixCacheHitRate: 0.25)))
            var acks = reports.inbound.makeAsyncIterator()
            guard case .reportAck = try await acks.next() else { Issue.record("the report was not acknowledged"); return }

            let chain: [UInt64] = [11, 12, 13, 14]
            for _ in 0..<3 {
                let reply = try await connection.call(
                    .scheduleRequest(ScheduleRequest(requestID: UUID().uuidString, model: "m", prefixHashes: chain, promptTokens: 64)))
                guard case .scheduleReply(let answer) = reply, case .assigned = answer.outcome else { Issue.record("\(reply)"); return }
            }
            try await node.register("b")
            let operatorConnection = try await node.connect(role: .operator)
            defer { operatorConnection.close() }
            _ = try await operatorConnection.call(.drainRequest(DrainRequest(instanceID: "b")))

            let (status, text) = try await get(port, "/metrics")
            #expect(status == 200)
            let page = try PromTextParser.parse(text)
            #expect(value(page, "junction_scheduler_raft_role", ["role": "leader"]) == 1)
            #expect(value(page, "junction_scheduler_raft_leader_id") == 1)
            #expect((value(page, "junction_scheduler_raft_commit_index") ?? 0) >= 3)
            #expect(value(page, "junction_scheduler_decisions_total", ["policy": "prefix-cache", "outcome": "assigned"]) == 3)
            #expect(value(page, "junction_scheduler_decision_seconds_count") == 3)
            #expect(value(page, "junction_scheduler_affinity_lookups_total") == 3)
            #expect(value(page, "junction_scheduler_affinity_hits_total") == 2, "the 2nd and 3rd find the prefix the 1st left")
            #expect(value(page, "junction_scheduler_prefix_chunks_requested_total") == 12)
            #expect(value(page, "junction_scheduler_prefix_chunks_matched_total") == 8)
            #expect((value(page, "junction_scheduler_wal_fsync_seconds_count") ?? 0) > 0)
            #expect((value(page, "junction_scheduler_wal_written_bytes_total") ?? 0) > 0)
            #expect(value(page, "junction_scheduler_load_reports_total") == 1)
            #expect(value(page, "junction_scheduler_instance_running", ["instance_id": "a", "model": "m"]) == 3)
            #expect(value(page, "junction_scheduler_instance_waiting", ["instance_id": "a"]) == 2)
            #expect(value(page, "junction_scheduler_instance_prefix_cache_hit_ratio", ["instance_id": "a"]) == 0.25)
            #expect(value(page, "junction_scheduler_instances", ["state": "draining", "role": "both"]) == 1)
            #expect(value(page, "junction_scheduler_instances", ["state": "up", "role": "both"]) == 1)
            #expect(try await get(port, "/readyz").status == 200)
            #expect(try await get(port, "/healthz").status == 200)
            #expect(try await get(port, "/nothing").status == 404)
        }
    }
}
