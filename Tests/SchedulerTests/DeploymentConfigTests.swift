import ClusterConfig
import Foundation
import Scheduler
import Testing

/// What a deployment (Kubernetes, a host of its own) needs of the config: values from the
/// environment, a listen address apart from the advertised one, and the id from the pod's name.
@Suite struct DeploymentConfigTests {
    let environment = ["JUNCTION_SECRET": "from-the-environment-0123", "POD_IP": "10.1.2.3", "EMPTY": ""]

    @Test func stringValuesTakeTheEnvironmentsValues() throws {
        let root: [String: Any] = [
            "cluster": ["secret": "${JUNCTION_SECRET}", "schedulers": [["id": 1, "address": "${POD_IP}:7100"]]],
            "scheduler": ["data_dir": "/data/${EMPTY}x", "tick_ms": 50],
        ]
        let out = try EnvironmentSubstitution.apply(toObject: root, environment: environment)
        let cluster = out["cluster"] as! [String: Any]
        #expect(cluster["secret"] as? String == "from-the-environment-0123")
        #expect((cluster["schedulers"] as! [[String: Any]])[0]["address"] as? String == "10.1.2.3:7100")
        #expect((out["scheduler"] as! [String: Any])["data_dir"] as? String == "/data/x")
        // Numbers stay numbers.
        #expect((out["scheduler"] as! [String: Any])["tick_ms"] as? Int == 50)
    }

    @Test func aLiteralDollarAndTheEscapeAreKept() throws {
        #expect(try EnvironmentSubstitution.substitute("pa$$word $x $", key: "k", environment: [:]) == "pa$$word $x $")
        #expect(try EnvironmentSubstitution.substitute("$${POD_IP} is ${POD_IP}", key: "k", environment: environment) == "${POD_IP} is 10.1.2.3")
    }

    @Test func aDefaultStandsInForAnUnsetOrEmptyVariable() throws {
        #expect(try EnvironmentSubstitution.substitute("${UNSET:-0.0.0.0:7100}", key: "k", environment: environment) == "0.0.0.0:7100")
        #expect(try EnvironmentSubstitution.substitute("${EMPTY:-x}", key: "k", environment: environment) == "x")
        #expect(try EnvironmentSubstitution.substitute("${POD_IP:-x}", key: "k", environment: environment) == "10.1.2.3")
        #expect(try EnvironmentSubstitution.substitute("${UNSET:-}", key: "k", environment: environment) == "")
    }

    @Test func everyUnsetVariableIsNamedAtOnce() {
        let root: [String: Any] = ["cluster": ["secret": "${A_SECRET}"], "scheduler": ["listen": "${A_LISTEN}"]]
        #expect(throws: ConfigError.self) { try EnvironmentSubstitution.apply(toObject: root, environment: [:]) }
        do { _ = try EnvironmentSubstitution.apply(toObject: root, environment: [:]) } catch {
            #expect(error.description.contains("A_SECRET") && error.description.contains("scheduler.listen") && error.description.contains("A_LISTEN"))
        }
    }

    @Test func anUnsetOrMalformedVariableNamesTheKeyHoldingIt() {
        let cases: [(String, String)] = [
            ("${NOT_SET}", "the environment variable NOT_SET"), ("${POD_IP", "without a closing"), ("${1X}", "does not name an environment variable"),
            ("${}", "does not name an environment variable"), ("${A-B}", "does not name an environment variable"),
        ]
        for (text, reason) in cases {
            let root: [String: Any] = ["cluster": ["schedulers": [["id": 1, "address": text]]]]
            do {
                _ = try EnvironmentSubstitution.apply(toObject: root, environment: environment)
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.key == "cluster.schedulers[0].address", "\(text)")
                #expect(error.reason.contains(reason), "\(text): \(error.reason)")
            }
        }
    }

    @Test func theFileIsReadWithTheEnvironment() throws {
        let path = NSTemporaryDirectory() + "junction-env-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"{"cluster": {"secret": "${JUNCTION_SECRET}"}}"#.utf8).write(to: URL(fileURLWithPath: path))
        let root = try ConfigFile.load(path: path, environment: environment)
        #expect((root["cluster"] as! [String: Any])["secret"] as? String == "from-the-environment-0123")
        #expect(throws: ConfigError.self) { try ConfigFile.load(path: path, environment: [:]) }
    }

    @Test func aSchedulerListensApartFromTheAddressItIsDialledAt() throws {
        var root = SchedulerConfigurationTests.good
        #expect(try SchedulerConfiguration.parse(root, id: 1).listen == nil)
        root["scheduler"] = ["data_dir": "/tmp/s-{id}", "listen": "0.0.0.0:7100"]
        let listen = try #require(try SchedulerConfiguration.parse(root, id: 1).listen)
        #expect(listen.host == "0.0.0.0" && listen.port == 7100)
        for bad: Any in ["0.0.0.0", "0.0.0.0:0", "host:70000", 7100] {
            root["scheduler"] = ["data_dir": "/tmp/s-{id}", "listen": bad]
            #expect(throws: ConfigError.self, "\(bad)") { try SchedulerConfiguration.parse(root, id: 1) }
        }
    }

    @Test func aStatefulSetPodsOrdinalIsItsIdPlusOne() {
        #expect(SchedulerIDFromHostname.id("junction-scheduler-0") == 1)
        #expect(SchedulerIDFromHostname.id("junction-scheduler-2") == 3)
        #expect(SchedulerIDFromHostname.id("junction-scheduler-2.junction-scheduler.ns.svc.cluster.local") == 3)
        for name in ["junction-scheduler", "scheduler0", "-1", "a-", "a-1x", "a-+1", "a-1234567890", ""] {
            #expect(SchedulerIDFromHostname.id(name) == nil, "\(name)")
        }
    }

    @Test func aCredentialIsReadFromItsOwnFile() throws {
        let path = NSTemporaryDirectory() + "junction-credential-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let credential = "junction-credential-v1:agent:vllm-0:" + String(repeating: "ab", count: 32)
        try Data((credential + "\n").utf8).write(to: URL(fileURLWithPath: path))
        func root(_ cluster: [String: Any]) -> [String: Any] {
            ["cluster": cluster.merging(["schedulers": [["id": 1, "address": "s-0.s:7100"]]]) { a, _ in a }]
        }
        #expect(try ClusterConfiguration.parse(root(["credential_file": path])).credential == credential)
        for (cluster, key) in [
            (["credential_file": path + ".missing"], "cluster.credential_file"),
            (["credential_file": path, "credential": credential], "cluster.credential_file"),
            (["credential_file": 7] as [String: Any], "cluster.credential_file"),
        ] {
            do {
                _ = try ClusterConfiguration.parse(root(cluster))
                Issue.record("accepted \(cluster)")
            } catch { #expect(error.key == key, "\(cluster): \(error)") }
        }
        try Data("not a credential".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ConfigError.self) { try ClusterConfiguration.parse(root(["credential_file": path])) }
    }
}
