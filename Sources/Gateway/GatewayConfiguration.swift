import ClusterConfig
import FlowControl
import GatewayCore
import Foundation
import Wire

/// `junction gateway --config FILE`: where it listens, how it waits, retries and limits, and
/// how to reach the schedulers. Key names follow the seed's `llm_gateway` section where it had
/// one (Docs/configuration.md lists them all).
public struct GatewayConfiguration: Sendable {
    public var cluster: ClusterConfiguration
    public var host = "127.0.0.1"
    public var port = 8080
    /// Names this gateway in its answers' `X-Junction-Gateway` header (nil: its listen address).
    public var name: String?
    /// `llm_gateway.api_keys`, each naming a client. Empty: no authentication.
    var clientKeys = ClientKeys()
    /// `llm_gateway.access_log`: one line per answered request (client, route, status, instance,
    /// timings, tokens) at info level under the `junction.gateway.access` label.
    public var accessLog = false
    /// `llm_gateway.tls`: serve clients over HTTPS with this certificate and key (nil: HTTP).
    public var tls: TLSFiles?
    /// `llm_gateway.engine_ca`: the CA `https` engines' certificates are verified with (nil: the
    /// system's roots).
    public var engineCA: String?
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
    /// The most prefix chunks a request is routed on (`llm_gateway.max_prefix_chunks`).
    public var maxPrefixChunks = 2_048
    /// Where the last instance table is kept, so a restarted gateway routes while no scheduler answers.
    public var tableCachePath: String?
    public var upstreamConnectTimeoutMilliseconds = 2_000
    /// Longest a request to an engine may take, from sending it to its answer's last byte.
    public var upstreamTimeoutMilliseconds = 600_000
    /// Streamed requests: longest wait for the engine's response head (engines send an event
    /// stream's head before they generate).
    public var responseHeadersTimeoutMilliseconds = 30_000
    /// Streamed requests: longest wait from sending to the first event.
    public var firstTokenTimeoutMilliseconds = 120_000
    /// Longest silence between two chunks of a relayed stream.
    public var streamIdleTimeoutMilliseconds = 60_000
    /// A client connection with no request in flight for this long is closed.
    public var clientIdleTimeoutMilliseconds = 60_000
    /// Client connections beyond this are closed as soon as they are accepted.
    public var maxClientConnections = 10_000
    /// An idle pooled connection to an engine is closed after this long (below uvicorn's 5 s, so
    /// the gateway, not the engine, ends it).
    public var upstreamIdleTimeoutMilliseconds = 4_000
    /// Idle connections kept per engine and event loop.
    public var upstreamMaxIdlePerEngine = 64
    /// pd-split's hand-off protocol (`llm_gateway.pd_handoff`: auto, vllm or sglang); nil (auto):
    /// SGLang's for an SGLang prefill instance, vLLM's for any other.
    public var handoffFlow: HandoffFlow?
    /// The `tracing` section: where request spans go (nil: nothing is traced).
    public var tracing: TracingConfiguration?
    /// Tenants, priority classes and the wait queue's size (flow control).
    public var flow = FlowConfiguration(queueCapacity: 512)

    public init(cluster: ClusterConfiguration) { self.cluster = cluster }

    /// How this gateway proves itself to the schedulers: its `cluster.credential` (a gateway's),
    /// or one derived from `cluster.secret` for its name.
    public func wireConfiguration() throws(ConfigError) -> WireConfiguration {
        try WireConfiguration.forProcess(cluster, role: .gateway, nodeID: name ?? "gateway-\(port)")
    }

    /// The request lifecycle's knobs, from this configuration.
    public var lifecycle: LifecycleConfiguration {
        var c = LifecycleConfiguration()
        c.retryCount = retryCount
        c.maxQueueSize = maxQueueSize
        c.waitScheduleTimeout = .milliseconds(waitScheduleTimeoutMilliseconds)
        c.waitScheduleTryPeriod = .milliseconds(waitScheduleTryPeriodMilliseconds)
        c.connectTimeout = .milliseconds(upstreamConnectTimeoutMilliseconds)
        c.responseHeadersTimeout = .milliseconds(responseHeadersTimeoutMilliseconds)
        c.firstTokenTimeout = .milliseconds(firstTokenTimeoutMilliseconds)
        c.streamIdleTimeout = .milliseconds(streamIdleTimeoutMilliseconds)
        c.requestTimeout = .milliseconds(upstreamTimeoutMilliseconds)
        return c
    }

    public static func load(path: String) throws(ConfigError) -> GatewayConfiguration {
        try parse(try ConfigFile.load(path: path))
    }

    public static func parse(_ root: [String: Any]) throws(ConfigError) -> GatewayConfiguration {
        var config = GatewayConfiguration(cluster: try ClusterConfiguration.parse(root))
        let section = try ConfigFile.object(root, "llm_gateway", required: false)
        config.tracing = try TracingConfiguration.parse(root)
        // A wrong credential is a config error at start, not a refused handshake later. The TLS
        // certificate is checked when the gateway starts, against its name after `--name`.
        var withoutTLS = config
        withoutTLS.cluster.tls = nil
        _ = try withoutTLS.wireConfiguration()
        if let listen = try ConfigFile.string(section, "llm_gateway.listen") {
            guard let (host, port) = ConfigFile.splitAddress(listen) else {
                throw ConfigError(key: "llm_gateway.listen", reason: "\"host:port\"")
            }
            (config.host, config.port) = (host, port)
        }
        if let keys = section?["api_keys"] { config.clientKeys = try parseClientKeys(keys) }
        config.engineCA = try ConfigFile.string(section, "llm_gateway.engine_ca")
        if let tls = section?["tls"] { config.tls = try TLSFiles.parse(tls, key: "llm_gateway.tls", needsCA: false) }
        config.accessLog = try ConfigFile.bool(section, "llm_gateway.access_log", default: config.accessLog)
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
        config.maxPrefixChunks = try ConfigFile.int(section, "llm_gateway.max_prefix_chunks", default: 2_048, range: 1...8_192)
        config.tableCachePath = try ConfigFile.string(section, "llm_gateway.table_cache_path")
        config.upstreamConnectTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.upstream_connect_timeout_ms", default: 2_000, range: 10...60_000)
        config.upstreamTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.upstream_timeout_ms", default: 600_000, range: 100...86_400_000)
        config.responseHeadersTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.response_headers_timeout_ms", default: 30_000, range: 10...86_400_000)
        config.firstTokenTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.first_token_timeout_ms", default: 120_000, range: 10...86_400_000)
        config.streamIdleTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.stream_idle_timeout_ms", default: 60_000, range: 10...86_400_000)
        config.clientIdleTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.client_idle_timeout_ms", default: 60_000, range: 100...86_400_000)
        config.maxClientConnections = try ConfigFile.int(
            section, "llm_gateway.max_client_connections", default: 10_000, range: 1...1_000_000)
        config.upstreamIdleTimeoutMilliseconds = try ConfigFile.int(
            section, "llm_gateway.upstream_idle_timeout_ms", default: 4_000, range: 10...3_600_000)
        config.upstreamMaxIdlePerEngine = try ConfigFile.int(
            section, "llm_gateway.upstream_max_idle_per_engine", default: 64, range: 0...100_000)
        guard config.upstreamConnectTimeoutMilliseconds < config.upstreamTimeoutMilliseconds else {
            throw ConfigError(
                key: "llm_gateway.upstream_connect_timeout_ms",
                reason: "less than llm_gateway.upstream_timeout_ms (\(config.upstreamTimeoutMilliseconds)): a connect may not outlast the whole request")
        }
        guard config.waitScheduleTimeoutMilliseconds == 0 || config.waitScheduleTryPeriodMilliseconds <= config.waitScheduleTimeoutMilliseconds else {
            throw ConfigError(
                key: "llm_gateway.wait_schedule_try_period",
                reason: "at most llm_gateway.wait_schedule_timeout (\(config.waitScheduleTimeoutMilliseconds)): a waiting request would give up before it asked again")
        }
        config.flow = try FlowConfigurationParsing.parse(
            section, queueCapacity: config.maxQueueSize, ttl: config.waitScheduleTimeoutMilliseconds, clients: Set(config.clientKeys.entries.map(\.client)))
        if let flow = try ConfigFile.string(section, "llm_gateway.pd_handoff"), flow != "auto" {
            guard let known = HandoffFlow(rawValue: flow) else {
                throw ConfigError(key: "llm_gateway.pd_handoff", reason: "one of auto, vllm, sglang")
            }
            config.handoffFlow = known
        }
        return config
    }

    /// `api_keys` is a list of entries `{"client": NAME, "key": KEY}` or `{"client": NAME,
    /// "key_sha256": HEX}` (the key's SHA-256, so the file need not hold the key); a client may
    /// have several keys (rotation). A bare string is a key of its own client, `key-N` by position.
    static func parseClientKeys(_ value: Any) throws(ConfigError) -> ClientKeys {
        let key = "llm_gateway.api_keys"
        guard let list = value as? [Any] else {
            throw ConfigError(key: key, reason: "a list of {\"client\": NAME, \"key\": KEY} (or \"key_sha256\": HEX) entries")
        }
        guard list.count <= ClientKeys.maxEntries else {
            throw ConfigError(key: key, reason: "at most \(ClientKeys.maxEntries) keys")
        }
        var entries: [ClientKeys.Entry] = []
        for (index, item) in list.enumerated() {
            let at = "\(key)[\(index)]"
            if let bare = item as? String {
                guard !bare.isEmpty, bare.utf8.count <= ClientKeys.maxKeyBytes else {
                    throw ConfigError(key: at, reason: "a key of 1 to \(ClientKeys.maxKeyBytes) bytes")
                }
                entries.append(.init(client: "key-\(index + 1)", digest: ClientKeys.digest(ofKey: bare)))
                continue
            }
            guard let entry = item as? [String: Any] else {
                throw ConfigError(key: at, reason: "a string or an object {\"client\": NAME, \"key\": KEY}")
            }
            if let unknown = entry.keys.sorted().first(where: { !["client", "key", "key_sha256"].contains($0) }) {
                throw ConfigError(key: "\(at).\(unknown)", reason: "unknown key: an entry has client, and key or key_sha256")
            }
            guard let client = entry["client"] as? String, ClientKeys.isValidClientName(client) else {
                throw ConfigError(key: "\(at).client", reason: "required: 1 to 64 letters, digits, '-', '_' or '.' (it names the client in logs and metrics)")
            }
            switch (entry["key"], entry["key_sha256"]) {
            case (let plain as String, nil):
                guard !plain.isEmpty, plain.utf8.count <= ClientKeys.maxKeyBytes else {
                    throw ConfigError(key: "\(at).key", reason: "a key of 1 to \(ClientKeys.maxKeyBytes) bytes")
                }
                entries.append(.init(client: client, digest: ClientKeys.digest(ofKey: plain)))
            case (nil, let hex as String):
                guard let digest = Credential.bytes(hex: hex.lowercased()), digest.count == 32 else {
                    throw ConfigError(key: "\(at).key_sha256", reason: "64 hex digits: the SHA-256 of the key (sha256sum)")
                }
                entries.append(.init(client: client, digest: digest))
            default:
                throw ConfigError(key: at, reason: "exactly one of key (a string) or key_sha256 (64 hex digits)")
            }
        }
        var seen = Set<[UInt8]>()
        for (index, entry) in entries.enumerated() where !seen.insert(entry.digest).inserted {
            throw ConfigError(key: "\(key)[\(index)]", reason: "the same key appears twice (a key names one client)")
        }
        return ClientKeys(entries)
    }
}
