import Foundation
import Logging
import RaftStore
import Routing
import Scheduler
import Testing

@Suite struct SchedulerConfigurationTests {
    static var good: [String: Any] { [
        "cluster": [
            "secret": "0123456789abcdef-secret",
            "schedulers": [["id": 1, "address": "127.0.0.1:7101"], ["id": 2, "address": "127.0.0.1:7102"], ["id": 3, "address": "127.0.0.1:7103"]],
        ],
        "scheduler": ["data_dir": "/tmp/s-{id}", "tick_ms": 50],
        "llm_scheduler": ["policy": "least-request", "params": ["load_weight": 2.0]],
    ] }

    @Test func readsEveryKey() throws {
        let config = try SchedulerConfiguration.parse(Self.good, id: 2)
        #expect(config.members.map(\.port) == [7101, 7102, 7103])
        #expect(config.dataDirectory == "/tmp/s-2")
        #expect(config.tickMilliseconds == 50 && config.electionTicks == 8)
        #expect(config.policy.name == .leastRequest && config.policy.loadWeight == 2)
    }

    @Test func theClusterNameDefaultsAndIsChecked() throws {
        #expect(try SchedulerConfiguration.parse(Self.good, id: 1).clusterName == "junction")
        var root = Self.good
        var cluster = root["cluster"] as! [String: Any]
        cluster["name"] = "prod-eu.2"
        root["cluster"] = cluster
        #expect(try SchedulerConfiguration.parse(root, id: 1).clusterName == "prod-eu.2")
        for bad: Any in ["", "prod eu", String(repeating: "a", count: 65), 7] {
            cluster["name"] = bad
            root["cluster"] = cluster
            #expect(throws: SchedulerConfiguration.ConfigError.self, "\(bad)") { try SchedulerConfiguration.parse(root, id: 1) }
        }
    }

    /// A data directory of another cluster (its identity file says so) is refused at start,
    /// naming both names, before anything is served.
    @Test func aDataDirectoryOfAnotherClusterIsRefused() throws {
        let directory = NSTemporaryDirectory() + "junction-other-cluster-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try NodeIdentity(clusterName: "other", incarnation: 42, firstStart: true).save(directory: directory)
        var root = Self.good
        root["scheduler"] = ["data_dir": directory]
        let config = try SchedulerConfiguration.parse(root, id: 1)
        do {
            _ = try SchedulerNode(config: config, id: 1, logger: Logger(label: "test"))
            Issue.record("a directory of cluster \"other\" was accepted")
        } catch {
            #expect("\(error)".contains("belongs to cluster \"other\", but cluster.name is \"junction\""), "\(error)")
        }
    }

    @Test func pdSplitAndItsThreshold() throws {
        var root = Self.good
        root["llm_scheduler"] = ["policy": "pd-split", "params": ["pd_local_prefill_tokens": 256.0]]
        let config = try SchedulerConfiguration.parse(root, id: 1)
        #expect(config.policy.name == .pdSplit && config.policy.pdLocalPrefillTokens == 256)
    }

    @Test func peerAddressesChangeOnlyWhereThisNodeDials() throws {
        var root = Self.good
        root["scheduler"] = ["data_dir": "/tmp/s-{id}", "peer_addresses": ["3": "127.0.0.1:7133"]]
        let config = try SchedulerConfiguration.parse(root, id: 2)
        #expect(config.dialAddress(of: config.member(3)!) == ("127.0.0.1", 7133))
        #expect(config.dialAddress(of: config.member(1)!) == ("127.0.0.1", 7101))
        #expect(config.member(3)!.address == "127.0.0.1:7103")  // what gateways and agents dial
    }

    @Test func badValuesNameTheirKey() {
        func key(_ change: (inout [String: Any]) -> Void, id: UInt64 = 1) -> String? {
            var root = Self.good
            change(&root)
            do { _ = try SchedulerConfiguration.parse(root, id: id); return nil } catch { return error.key }
        }
        #expect(key { $0["cluster"] = nil } == "cluster")
        #expect(key { _ in } == nil)
        #expect(key({ _ in }, id: 9) == "cluster.schedulers")
        #expect(key { $0["cluster"] = ["secret": "short", "schedulers": []] } == "cluster.secret")
        #expect(key { $0["scheduler"] = ["data_dir": "/x", "tick_ms": 1] } == "scheduler.tick_ms")
        #expect(key { $0["scheduler"] = ["tick_ms": 100] } == "scheduler.data_dir")
        #expect(key { $0["llm_scheduler"] = ["policy": "fastest"] } == "llm_scheduler.policy")
        #expect(key { $0["llm_scheduler"] = ["params": ["kv_pressure": 3.0]] } == "llm_scheduler.params.kv_pressure")
        #expect(key { $0["llm_scheduler"] = ["params": ["pd_local_prefill_tokens": -1.0]] } == "llm_scheduler.params.pd_local_prefill_tokens")
        #expect(key { $0["scheduler"] = ["data_dir": "/x", "peer_addresses": ["1": "127.0.0.1:1"]] } == "scheduler.peer_addresses.1")
        #expect(key { $0["scheduler"] = ["data_dir": "/x", "peer_addresses": ["7": "127.0.0.1:1"]] } == "scheduler.peer_addresses.7")
        #expect(key { $0["scheduler"] = ["data_dir": "/x", "peer_addresses": ["2": "nohost"]] } == "scheduler.peer_addresses.2")
        #expect(key { $0["scheduler"] = ["data_dir": "/x", "peer_addresses": "x"] } == "scheduler.peer_addresses")
        #expect(key {
            $0["cluster"] = ["secret": "0123456789abcdef-secret", "schedulers": [["id": 1, "address": "nohost"]]]
        } == "cluster.schedulers[0].address")
    }
}
