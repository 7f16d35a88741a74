import ClusterConfig
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
