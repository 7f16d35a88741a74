import ClusterConfig
import GatewayCore
import Foundation

/// `junction gateway --config FILE`: where it listens, how it waits, retries and limits, and
/// how to reach the schedulers. Key names follow the seed's `llm_gateway` section where it had
/// one (Docs/configuration.md lists them all).
public struct GatewayConfiguration: Sendable {
    public var cluster: ClusterConfiguration
    public var host = "127.0.0.1"
    public var port = 8080
    /// Names this gateway in its answers' `X-Junction-Gateway` header (nil: its listen address).
    public var name: String?
    /// Empty: no authentication.
    public var apiKeys: Set<String> = []
    public var maxBodyBytes = 16 << 20
    /// Requests held while the scheduler says every engine is saturated.
    public var maxQueueSize = 512
    public var waitScheduleTimeoutMilliseconds = 30_000
    public var waitScheduleTryPeriodMilliseconds = 200
    /// Further instances to try after the first fails before any byte reached the client.
    public var retryCount = 2
    public var schedulerTimeoutMilliseconds = 300
    /// Bytes of canonical prompt per hashed chunk (about 64 tokens at 4 bytes a token).
    public var chunkBytes = 256
    /// Where the last instance table is kept, so a restarted gateway routes while no scheduler answers.
    public var tableCachePath: String?
    public var upstreamConnectTimeoutMilliseconds = 2_000
    /// Longest a request to an engine may take, first byte to last.
    public var upstreamTimeoutMilliseconds = 600_000
    /// pd-split's hand-off protocol (`llm_gateway.pd_handoff`: auto, vllm or sglang); nil (auto):
    /// SGLang's for an SGLang prefill instance, vLLM's for any other.
    public var handoffFlow: HandoffFlow?

    public init(cluster: ClusterConfiguration) { self.cluster = cluster }

    public static func load(path: String) throws(ConfigError) -> GatewayConfiguration {
        try parse(try ConfigFile.load(path: path))
    }

    public static func parse(_ root: [String: Any]) throws(ConfigError) -> GatewayConfiguration {
        var config = GatewayConfiguration(cluster: try ClusterConfiguration.parse(root))
        let section = try ConfigFile.object(root, "llm_gateway", required: false)
        if let listen = try ConfigFile.string(section, "llm_gateway.listen") {
            guard let (host, port) = ConfigFile.splitAddress(listen) else {
                throw ConfigError(key: "llm_gateway.listen", reason: "\"host:port\"")
            }
            (config.host, config.port) = (host, port)
        }
        if let keys = section?["api_keys"] {
            guard let list = keys as? [String], list.allSatisfy({ !$0.isEmpty }) else {
                throw ConfigError(key: "llm_gateway.api_keys", reason: "a list of non-empty strings")
            }
            config.apiKeys = Set(list)
        }
        config.maxBodyBytes = try ConfigFile.int(section, "llm_gateway.max_body_bytes", default: 16 << 20, range: 1_024...(1 << 30))
        config.maxQueueSize = try ConfigFile.int(section, "llm_gateway.max_queue_size", default: 512, range: 0...1_000_000)
        config.waitScheduleTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.wait_schedule_timeout", default: 30_000, range: 0...3_600_000)
        config.waitScheduleTryPeriodMilliseconds = try ConfigFile.int(
            section, "llm_gateway.wait_schedule_try_period", default: 200, range: 1...60_000)
        config.retryCount = try ConfigFile.int(section, "llm_gateway.retry_count", default: 2, range: 0...10)
        config.schedulerTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.scheduler_timeout_ms", default: 300, range: 10...60_000)
        config.chunkBytes = try ConfigFile.int(section, "llm_gateway.chunk_bytes", default: 256, range: 16...65_536)
        config.tableCachePath = try ConfigFile.string(section, "llm_gateway.table_cache_path")
        config.upstreamConnectTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.upstream_connect_timeout_ms", default: 2_000, range: 10...60_000)
        config.upstreamTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.upstream_timeout_ms", default: 600_000, range: 100...86_400_000)
        if let flow = try ConfigFile.string(section, "llm_gateway.pd_handoff"), flow != "auto" {
            guard let known = HandoffFlow(rawValue: flow) else {
                throw ConfigError(key: "llm_gateway.pd_handoff", reason: "one of auto, vllm, sglang")
            }
            config.handoffFlow = known
        }
        return config
    }
}
