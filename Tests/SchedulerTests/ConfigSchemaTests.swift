@testable import ClusterConfig
import Scheduler
import Testing

/// Every process refuses a config file with a key it does not know, naming the key and the
/// nearest known one; the seed's deployment keys are accepted and said to be unused.
@Suite struct ConfigSchemaTests {
    static var good: [String: Any] { SchedulerConfigurationTests.good }

    func refusal(_ change: (inout [String: Any]) -> Void) -> ConfigError? {
        var root = Self.good
        change(&root)
        do { _ = try ClusterConfiguration.parse(root); return nil } catch { return error }
    }

    @Test func aMisspeltKeyIsRefusedNamingTheNearestKnownOne() throws {
        let apiKey = try #require(refusal { $0["llm_gateway"] = ["api_key": ["k"]] })
        #expect(apiKey.key == "llm_gateway.api_key")
        #expect(apiKey.reason == "unknown key; did you mean llm_gateway.api_keys?")
        let section = try #require(refusal { $0["llm_gatway"] = ["api_keys": ["k"]] })
        #expect(section.key == "llm_gatway" && section.reason.contains("did you mean llm_gateway?"))
        let tick = try #require(refusal { $0["scheduler"] = ["data_dir": "/x", "tickms": 50] })
        #expect(tick.reason.contains("scheduler.tick_ms"))
        let member = try #require(refusal {
            $0["cluster"] = ["secret": "0123456789abcdef-secret", "schedulers": [["id": 1, "adress": "127.0.0.1:1"]]]
        })
        #expect(member.key == "cluster.schedulers[0].adress" && member.reason.contains("cluster.schedulers[0].address"))
    }

    @Test func aKeyInTheWrongSectionNamesTheRightOne() throws {
        let policy = try #require(refusal { $0["scheduler"] = ["data_dir": "/x", "policy": "least-request"] })
        #expect(policy.key == "scheduler.policy" && policy.reason.contains("llm_scheduler.policy"))
    }

    @Test func aKeyFarFromEveryKnownOneIsJustUnknown() throws {
        let far = try #require(refusal { $0["agent"] = ["completely_different": 1] })
        #expect(far.key == "agent.completely_different" && far.reason == "unknown key")
    }

    /// The seed's own service JSON (PAI-EAS) with a `cluster` section added starts unchanged;
    /// its deployment keys are reported as unused.
    @Test func theSeedsDeploymentKeysAreAcceptedAndNamedUnused() throws {
        var root = Self.good
        root["llm_gateway"] = [
            "infer_backend": "vllm", "max_queue_size": 128, "retry_count": 2, "wait_schedule_timeout": 5000, "wait_schedule_try_period": 500,
        ]
        root["llm_scheduler"] = ["cpu": 4, "memory": 4000, "policy": "prefix-cache", "instance_type": "ecs.c7.large"]
        root["metadata"] = ["name": "llm_gateway", "group": "group_llm_gateway", "instance": 2]
        root["cloud"] = ["computing": ["instance_type": "ecs.c7.large"]]
        let cluster = try ClusterConfiguration.parse(root)
        #expect(cluster.unusedKeys == ["cloud", "llm_scheduler.cpu", "llm_scheduler.instance_type", "llm_scheduler.memory", "metadata"])
        let scheduler = try SchedulerConfiguration.parse(root, id: 1)
        #expect(scheduler.policy.name == .prefixCache && scheduler.unusedConfigKeys == cluster.unusedKeys)
    }

    @Test func keysThatDependOnEachOtherAreCheckedTogether() {
        var root = Self.good
        root["scheduler"] = ["data_dir": "/x", "heartbeat_timeout_ms": 400, "report_interval_ms": 250]
        #expect(throws: ConfigError.self) { _ = try SchedulerConfiguration.parse(root, id: 1) }
        do { _ = try SchedulerConfiguration.parse(root, id: 1) } catch { #expect(error.key == "scheduler.heartbeat_timeout_ms") }
        root["scheduler"] = ["data_dir": "/x", "heartbeat_timeout_ms": 500, "report_interval_ms": 250]
        #expect((try? SchedulerConfiguration.parse(root, id: 1)) != nil)
    }

    @Test func editDistanceIsLevenshteins() {
        #expect(ConfigSchema.editDistance("api_key", "api_keys") == 1)
        #expect(ConfigSchema.editDistance("", "abc") == 3)
        #expect(ConfigSchema.editDistance("kitten", "sitting") == 3)
    }
}
