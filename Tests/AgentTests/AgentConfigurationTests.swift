import Agent
import Foundation
import AgentCore
import ClusterConfig
import Testing
import Wire

@Suite struct AgentConfigurationTests {
    private let cluster: [String: Any] = [
        "secret": "agent-config-test-secret", "schedulers": [["id": 1, "address": "127.0.0.1:7001"]],
    ]

    @Test func defaultsAndOverrides() throws {
        let plain = try AgentConfiguration.parse(["cluster": cluster], engineURL: "http://10.0.0.5:8000/", instanceID: nil)
        #expect(plain.instanceID == "10.0.0.5-8000" && plain.engineURL == "http://10.0.0.5:8000")
        #expect(plain.scrapeIntervalMilliseconds == 250 && plain.healthFailures == 2 && plain.engineFamily == nil && plain.role == .both)
        #expect(plain.filterMetrics)
        let tuned = try AgentConfiguration.parse(
            [
                "cluster": cluster, "llm_gateway": ["infer_backend": "sglang"],
                "agent": ["scrape_interval_ms": 100, "role": "prefill", "model": "m", "drain_timeout_ms": 0, "filter_metrics": false],
            ], engineURL: "http://e:1", instanceID: "e1")
        #expect(tuned.engineFamily == .sglang && tuned.role == .prefill && tuned.model == "m" && tuned.instanceID == "e1")
        #expect(tuned.scrapeIntervalMilliseconds == 100 && tuned.drainTimeoutMilliseconds == 0 && !tuned.filterMetrics)
        // The agent's own key wins over the deployment-wide one.
        let own = try AgentConfiguration.parse(
            ["cluster": cluster, "llm_gateway": ["infer_backend": "sglang"], "agent": ["engine": "vllm"]], engineURL: "http://e:1",
            instanceID: nil)
        #expect(own.engineFamily == .vllm)
        let prefill = try AgentConfiguration.parse(
            ["cluster": cluster, "agent": ["role": "prefill", "bootstrap_port": 9001]], engineURL: "http://e:1", instanceID: nil)
        #expect(prefill.bootstrapPort == 9001 && plain.bootstrapPort == nil)
        #expect(AgentConfiguration.role(named: "decode") == .decode && AgentConfiguration.role(named: "Decode") == nil)
    }

    @Test(arguments: [
        (#"{"agent": {"role": "leader"}}"#, "http://e:1", "agent.role"),
        (#"{"agent": {"engine": "tgi"}}"#, "http://e:1", "agent.engine"),
        (#"{"llm_gateway": {"infer_backend": 3}}"#, "http://e:1", "llm_gateway.infer_backend"),
        (#"{"agent": {"scrape_interval_ms": 0}}"#, "http://e:1", "agent.scrape_interval_ms"),
        (#"{"agent": {"bootstrap_port": 70000}}"#, "http://e:1", "agent.bootstrap_port"),
        (#"{"agent": {"bootstrap_port": "8998"}}"#, "http://e:1", "agent.bootstrap_port"),
        (#"{"agent": {"filter_metrics": "no"}}"#, "http://e:1", "agent.filter_metrics"),
        ("{}", "ftp://e:1", "--engine"),
        ("{}", "e:1", "--engine"),
    ])
    func badConfigNamesTheKey(extra: String, url: String, key: String) throws {
        var root = try #require(try JSONSerialization.jsonObject(with: Data(extra.utf8)) as? [String: Any])
        root["cluster"] = cluster
        do {
            _ = try AgentConfiguration.parse(root, engineURL: url, instanceID: nil)
            Issue.record("accepted \(extra) with \(url)")
        } catch {
            #expect(error.key == key, "\(error)")
        }
    }
}
