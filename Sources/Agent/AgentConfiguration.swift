import AgentCore
import ClusterConfig
import Foundation
import NIOSSL
import Wire

/// `junction agent --engine URL --config FILE [--instance-id ID]`: which engine to watch, how
/// often, and how to reach the schedulers. Docs/configuration.md lists the keys.
public struct AgentConfiguration: Sendable {
    public var cluster: ClusterConfiguration
    /// The engine's base URL, e.g. http://10.0.0.5:8000 (no trailing slash).
    public var engineURL: String
    public var instanceID: String
    /// nil: detect from the engine.
    public var engineFamily: EngineFamily?
    /// nil: the first model `/v1/models` lists.
    public var model: String?
    public var role: InstanceRole = .both
    /// SGLang prefill instances: the bootstrap port decode instances fetch the KV cache from.
    /// nil: SGLang's default (8998) for an SGLang prefill instance, none otherwise.
    public var bootstrapPort: Int?
    public var scrapeIntervalMilliseconds = 250
    public var scrapeTimeoutMilliseconds = 1_000
    /// `agent.filter_metrics`: ask the engine for only the samples the agent reads
    /// (`/metrics?name[]=…`, `MetricsQuery`); false: always the whole page.
    public var filterMetrics = true
    public var healthFailures = 2
    public var drainTimeoutMilliseconds = 30_000
    public var nodeName = ProcessInfo.processInfo.hostName
    /// How the agent proves itself to the schedulers: `cluster.credential` (an agent's, whose id
    /// is the instance id), or one derived from `cluster.secret` for the instance id.
    public var wire: WireConfiguration
    /// `agent.engine_ca`: the CA an `https` engine's certificate is verified with (nil: the
    /// system's roots). Read at start.
    public var engineTrustRoots: [NIOSSLCertificate]?

    public init(cluster: ClusterConfiguration, engineURL: String, instanceID: String? = nil) throws(ConfigError) {
        self.cluster = cluster
        self.engineURL = engineURL.hasSuffix("/") ? String(engineURL.dropLast()) : engineURL
        let id = instanceID ?? Self.defaultInstanceID(engineURL)
        self.instanceID = id
        wire = try WireConfiguration.forProcess(cluster, role: .agent, nodeID: id)
    }

    public static func load(path: String, engineURL: String, instanceID: String?) throws(ConfigError) -> AgentConfiguration {
        try parse(try ConfigFile.load(path: path), engineURL: engineURL, instanceID: instanceID)
    }

    public static func parse(_ root: [String: Any], engineURL: String, instanceID: String?) throws(ConfigError) -> AgentConfiguration {
        guard let url = URL(string: engineURL), let scheme = url.scheme, scheme == "http" || scheme == "https", url.host != nil else {
            throw ConfigError(key: "--engine", reason: "an http:// or https:// URL, e.g. http://127.0.0.1:8000")
        }
        let cluster = try ClusterConfiguration.parse(root)
        // An agent holding a credential is the instance it names.
        let credentialID = cluster.credential.flatMap(Credential.init(token:)).flatMap { $0.role == .agent ? $0.nodeID : nil }
        if let credentialID, let instanceID, instanceID != credentialID {
            throw ConfigError(key: "--instance-id", reason: "'\(instanceID)', but cluster.credential is agent '\(credentialID)'s")
        }
        var config = try AgentConfiguration(cluster: cluster, engineURL: engineURL, instanceID: instanceID ?? credentialID)
        let agent = try ConfigFile.object(root, "agent", required: false)
        config.scrapeIntervalMilliseconds = try ConfigFile.int(agent, "agent.scrape_interval_ms", default: 250, range: 10...60_000)
        config.scrapeTimeoutMilliseconds = try ConfigFile.int(agent, "agent.scrape_timeout_ms", default: 1_000, range: 10...60_000)
        config.filterMetrics = try ConfigFile.bool(agent, "agent.filter_metrics", default: true)
        config.healthFailures = try ConfigFile.int(agent, "agent.health_failures", default: 2, range: 1...100)
        config.drainTimeoutMilliseconds = try ConfigFile.int(agent, "agent.drain_timeout_ms", default: 30_000, range: 0...3_600_000)
        config.model = try ConfigFile.string(agent, "agent.model")
        if let name = try ConfigFile.string(agent, "agent.role") {
            guard let role = role(named: name) else { throw ConfigError(key: "agent.role", reason: "one of both, prefill, decode") }
            config.role = role
        }
        config.bootstrapPort = try ConfigFile.optionalInt(agent, "agent.bootstrap_port", range: 1...65_535)
        if let caFile = try ConfigFile.string(agent, "agent.engine_ca") {
            do { config.engineTrustRoots = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
                throw ConfigError(key: "agent.engine_ca", reason: "cannot read a PEM certificate from \(caFile): \(error)")
            }
        }
        // The seed's key names the engine for the whole deployment; the agent's own key wins.
        let gateway = try ConfigFile.object(root, "llm_gateway", required: false)
        for (section, key) in [(agent, "agent.engine"), (gateway, "llm_gateway.infer_backend")] {
            guard let name = try ConfigFile.string(section, key), config.engineFamily == nil else { continue }
            guard let family = EngineFamily(configName: name) else {
                throw ConfigError(key: key, reason: "one of vllm, sglang, bladellm")
            }
            config.engineFamily = family
        }
        return config
    }

    public static func role(named name: String) -> InstanceRole? {
        switch name {
        case "both": .both
        case "prefill": .prefill
        case "decode": .decode
        default: nil
        }
    }

    /// `127.0.0.1:8000` becomes `127.0.0.1-8000`: stable across restarts of the agent.
    static func defaultInstanceID(_ engineURL: String) -> String {
        guard let url = URL(string: engineURL), let host = url.host else { return engineURL }
        return url.port.map { "\(host)-\($0)" } ?? host
    }
}
