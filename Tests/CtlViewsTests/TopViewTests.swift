import CtlViews
import Foundation
import Testing
import Wire

@Suite struct TopViewTests {
    private func status() -> StatusReply {
        var s = StatusReply()
        s.nodeID = 1
        s.leaderID = 2
        s.term = 9
        s.commitIndex = 120
        s.raftState = "follower"
        s.clusterName = "prod"
        s.policy = PolicyConfig(name: "prefix-cache")
        s.members = [
            MemberStatus(id: 1, address: "10.0.0.1:7000", reachable: true),
            MemberStatus(id: 2, address: "10.0.0.2:7000", reachable: true),
            MemberStatus(id: 3, address: "10.0.0.3:7000", reachable: false),
        ]
        var down = Instance(id: "engine-b", endpointURL: "http://b", model: "qwen", engine: .sglang, role: .both, state: .down)
        down.stateReason = "agent reports the engine unhealthy"
        s.instances = [
            InstanceStatus(
                instance: Instance(id: "engine-a", endpointURL: "http://a", model: "qwen", engine: .vllm, role: .both, state: .up),
                lastReport: LoadReport(instanceID: "engine-a", running: 7, waiting: 3, kvUsage: 0.425, promptTokensPerS: 1500, generationTokensPerS: 240),
                reportAgeMs: 120, inFlight: 9),
            InstanceStatus(instance: down),
        ]
        return s
    }

    @Test func aFrameShowsTheTrioEveryEngineAndEveryGateway() {
        let snapshot = TopSnapshot(
            status: status(),
            gateways: [
                .init(url: "http://g1:8081", fallback: false, inFlight: 4, pending: 1, requestsPerSecond: 12.5),
                .init(url: "http://g2:8081", fallback: true, inFlight: 0, pending: 0),
                .init(url: "http://g3:8081", fallback: nil),
            ],
            takenAt: Date(timeIntervalSince1970: 0))
        let lines = TopView.render(snapshot)
        let text = lines.joined(separator: "\n")
        #expect(lines[0].contains("cluster prod") && lines[0].contains("leader 2") && lines[0].contains("term 9") && lines[0].contains("commit 120"))
        #expect(lines[1].contains("2/3 reachable") && lines[1].contains("2*") && lines[1].contains("3 UNREACHABLE"))
        let a = lines.first { $0.hasPrefix("engine-a") } ?? ""
        #expect(a.split(separator: " ", omittingEmptySubsequences: true) == ["engine-a", "up", "qwen", "vllm", "both", "7", "3", "42", "1500", "240", "9", "120", "ms"])
        let b = lines.first { $0.hasPrefix("engine-b") } ?? ""
        #expect(b.contains("DOWN") && b.contains(" - "))
        #expect(text.contains("    agent reports the engine unhealthy"), "a down instance says why")
        #expect(lines.contains { $0.hasPrefix("http://g1:8081") && $0.contains("scheduled") && $0.contains("12.5") })
        #expect(lines.contains { $0.hasPrefix("http://g2:8081") && $0.contains("FALLBACK") })
        #expect(lines.contains { $0.hasPrefix("http://g3:8081") && $0.contains("DOWN") })
        #expect(lines.allSatisfy { $0.count <= 120 })
    }

    @Test func withoutAnySchedulerTheFrameSaysSo() {
        let lines = TopView.render(TopSnapshot(status: nil, statusError: "connection refused", gateways: [], takenAt: Date()))
        #expect(lines[0].contains("NO SCHEDULER ANSWERS: connection refused"))
        #expect(!lines.contains { $0.hasPrefix("GATEWAY") })
    }

    @Test func aGatewaysRowAndRateComeFromItsPage() {
        let page = """
            # TYPE junction_gateway_fallback gauge
            junction_gateway_fallback 0
            # TYPE junction_gateway_requests_in_flight gauge
            junction_gateway_requests_in_flight 3
            # TYPE junction_gateway_requests_pending gauge
            junction_gateway_requests_pending 2
            # TYPE junction_gateway_requests_total counter
            junction_gateway_requests_total{path="/v1/completions",status="200",instance_id="a"} 100
            junction_gateway_requests_total{path="/v1/completions",status="200",instance_id="b"} 50

            """
        let then = Date(timeIntervalSince1970: 100)
        let (row, total) = TopView.gateway(url: "http://g", page: page, previous: (total: 130, at: then), now: then.addingTimeInterval(2))
        #expect(total == 150)
        #expect(row == TopSnapshot.Gateway(url: "http://g", fallback: false, inFlight: 3, pending: 2, requestsPerSecond: 10))
        let (unreachable, none) = TopView.gateway(url: "http://g", page: nil, previous: nil, now: then)
        #expect(unreachable.fallback == nil && none == nil)
        let (garbage, _) = TopView.gateway(url: "http://g", page: "not { metrics", previous: nil, now: then)
        #expect(garbage.fallback == nil, "a page that does not parse counts as no answer")
    }
}
