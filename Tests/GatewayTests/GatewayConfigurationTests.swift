import ClusterConfig
import FlowControl
import Foundation
import ProcessHarness
import Wire
import Gateway
import Testing

/// The gateway refuses timings that contradict each other, naming the key to change.
@Suite struct GatewayConfigurationTests {
    func refusal(_ gateway: [String: Any]) -> ConfigError? {
        do {
            _ = try GatewayConfiguration.parse([
                "cluster": ["secret": "gateway-config-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:1"]]],
                "llm_gateway": gateway,
            ])
            return nil
        } catch {
            return error
        }
    }

    @Test func aConnectTimeoutLongerThanTheWholeRequestIsRefused() {
        #expect(refusal(["upstream_timeout_ms": 1_000, "upstream_connect_timeout_ms": 2_000])?.key == "llm_gateway.upstream_connect_timeout_ms")
        #expect(refusal(["upstream_timeout_ms": 1_000, "upstream_connect_timeout_ms": 500]) == nil)
    }

    @Test func aRetryPeriodLongerThanTheWaitIsRefused() {
        #expect(refusal(["wait_schedule_timeout": 300, "wait_schedule_try_period": 500])?.key == "llm_gateway.wait_schedule_try_period")
        #expect(refusal(["wait_schedule_timeout": 0, "wait_schedule_try_period": 500]) == nil)  // no waiting at all
    }

    @Test func anUnknownKeyIsRefused() {
        #expect(refusal(["api_key": ["k"]])?.reason == "unknown key; did you mean llm_gateway.api_keys?")
    }
}

/// The `tracing` section: off when absent, and a wrong key or value is named.
@Suite struct TracingConfigurationTests {
    func parse(_ tracing: Any?) throws(ConfigError) -> TracingConfiguration? {
        var root: [String: Any] = ["cluster": ["secret": "gateway-config-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:1"]]]]
        root["tracing"] = tracing
        return try GatewayConfiguration.parse(root).tracing
    }

    func refusal(_ tracing: Any) -> String? {
        do {
            _ = try parse(tracing)
            return nil
        } catch {
            return error.key
        }
    }

    @Test func absentOrDisabledMeansNoTracing() throws {
        #expect(try parse(nil) == nil)
        #expect(try parse(["enabled": false, "otlp_endpoint": "http://127.0.0.1:4318"]) == nil)
    }

    @Test func theEndpointIsABaseURLAndSpansGoToItsTracesPath() throws {
        let config = try #require(try parse(["otlp_endpoint": "http://collector:4318", "sample_ratio": 0.25, "headers": ["x-key": "k"]]))
        #expect(config.tracesURL == "http://collector:4318/v1/traces")
        #expect(config.sampleRatio == 0.25)
        #expect(config.headers == ["x-key": "k"])
        #expect(try parse(["otlp_endpoint": "https://collector/otlp/"])?.tracesURL == "https://collector/otlp/v1/traces")
        #expect(try parse(["otlp_endpoint": "http://c:4318", "sample_ratio": 1])?.sampleRatio == 1)
    }

    @Test func wrongValuesAreNamed() {
        #expect(refusal([:]) == "tracing.otlp_endpoint")
        #expect(refusal(["otlp_endpoint": "collector:4318"]) == "tracing.otlp_endpoint")
        #expect(refusal(["otlp_endpoint": "grpc://collector:4317"]) == "tracing.otlp_endpoint")
        #expect(refusal(["otlp_endpoint": "http://c:4318", "sample_ratio": 1.5]) == "tracing.sample_ratio")
        #expect(refusal(["otlp_endpoint": "http://c:4318", "sample_ratio": true]) == "tracing.sample_ratio")
        #expect(refusal(["otlp_endpoint": "http://c:4318", "sample_ratio": "all"]) == "tracing.sample_ratio")
        #expect(refusal(["otlp_endpoint": "http://c:4318", "headers": ["x": 1]]) == "tracing.headers")
        #expect(refusal(["otlp_endpoint": "http://c:4318", "export_timeout_ms": 5]) == "tracing.export_timeout_ms")
        #expect(refusal(["otlp_endpoint": "http://c:4318", "enabled": "yes"]) == "tracing.enabled")
        #expect(refusal(["otlp_endpont": "http://c:4318"]) == "tracing.otlp_endpont")
    }
}

/// A gateway's wire certificate is checked against the name it runs under, which `--name` may
/// set after the file is read: the file alone must not be refused for the default name.
@Suite struct GatewayTLSConfigurationTests {
    @Test func theCertificateIsCheckedAgainstTheNameTheGatewayRunsUnder() throws {
        let directory = NSTemporaryDirectory() + "gateway-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try LocalPKI()
        let ca = try pki.writeCA(to: directory)
        let own = try pki.write([CertificateIdentity(role: .gateway, nodeID: "edge-1")], as: "edge-1", to: directory)
        var config = try GatewayConfiguration.parse([
            "cluster": [
                "secret": "gateway-config-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:1"]],
                "tls": ["ca": ca, "certificate": own.certificate, "key": own.key],
            ]
        ])
        #expect(throws: ConfigError.self) { _ = try config.wireConfiguration() }  // still "gateway-8080"
        config.name = "edge-1"
        #expect(try config.wireConfiguration().tls?.ownIdentities == [CertificateIdentity(role: .gateway, nodeID: "edge-1")])
    }
}

/// `priority_classes[].engine_priority`: the engines' own priority for a class's requests.
@Suite struct EnginePriorityConfigurationTests {
    func flow(_ classes: Any) throws(ConfigError) -> FlowConfiguration {
        try GatewayConfiguration.parse([
            "cluster": ["secret": "gateway-config-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:1"]]],
            "llm_gateway": ["priority_classes": classes],
        ]).flow
    }

    @Test func classesWithoutItLeaveBodiesAlone() throws {
        let config = try flow([["name": "interactive"], ["name": "standard"], ["name": "batch"]])
        #expect((0..<3).allSatisfy { config.enginePriority(ofClass: $0) == nil })
    }

    @Test func oneClassSettingItGivesEveryOtherClassZero() throws {
        let config = try flow([["name": "interactive"], ["name": "standard"], ["name": "batch", "engine_priority": 10]])
        #expect(config.enginePriority(ofClass: 0) == 0)
        #expect(config.enginePriority(ofClass: 1) == 0)
        #expect(config.enginePriority(ofClass: 2) == 10)
    }

    @Test func aValueThatIsNotASmallIntegerIsNamed() {
        for bad: Any in [1.5, "1", 2_000_000, true] {
            do {
                _ = try flow([["name": "batch", "engine_priority": bad]])
                Issue.record("accepted \(bad)")
            } catch {
                #expect(error.key == "llm_gateway.priority_classes[0].engine_priority")
            }
        }
    }
}
