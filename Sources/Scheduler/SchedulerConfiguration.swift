import ClusterConfig
import Foundation
import Raft
import Routing

/// `junction scheduler --config FILE --id N`: the cluster's schedulers and secret, this node's
/// data directory and timings, and the seed's `llm_scheduler.policy`. Docs/configuration.md
/// lists every key with its unit and default.
public struct SchedulerConfiguration: Sendable {
    public typealias Member = ClusterConfiguration.Member
    public typealias ConfigError = ClusterConfig.ConfigError

    public var members: [Member]
    public var clusterName = "junction"
    public var secret: String
    public var dataDirectory: String
    public var tickMilliseconds = 50
    public var electionTicks = 8
    public var heartbeatTimeoutMilliseconds = 3_000
    public var reportIntervalMilliseconds = 250
    public var affinityBatchMilliseconds = 100
    public var policy = PolicyConfiguration()
    /// Where this node dials a peer when that is not the peer's cluster address (a relay, or a
    /// separate replication network); `scheduler.peer_addresses`.
    public var peerAddresses: [NodeID: (host: String, port: Int)] = [:]
    /// Where this node listens when that is not its cluster address (`scheduler.listen`): the
    /// cluster address is what the others dial (a DNS name), this is the socket (`0.0.0.0:7100`).
    public var listen: (host: String, port: Int)?
    /// The seed's keys the file has and Junction does not use (`ConfigSchema.acceptedUnused`).
    public var unusedConfigKeys: [String] = []
    /// The `tracing` section: where decision spans go (nil: not traced).
    public var tracing: TracingConfiguration?
    /// `cluster.tls`: mutual TLS with every peer and client (nil: plain TCP).
    public var tls: TLSFiles?

    /// Reads the file; `{id}` in `scheduler.data_dir` becomes the node's id.
    public static func load(path: String, id: NodeID) throws(ConfigError) -> SchedulerConfiguration {
        try parse(try ConfigFile.load(path: path), id: id)
    }

    public static func parse(_ root: [String: Any], id: NodeID) throws(ConfigError) -> SchedulerConfiguration {
        let cluster = try ClusterConfiguration.parse(root)
        let members = cluster.members
        guard let secret = cluster.secret else {
            throw ConfigError(key: "cluster.secret", reason: "required for a scheduler: it derives every peer's credential from the root secret")
        }
        guard members.contains(where: { $0.id == id }) else {
            throw ConfigError(key: "cluster.schedulers", reason: "no scheduler has id \(id) (--id)")
        }
        let scheduler = try ConfigFile.object(root, "scheduler", required: true)!
        guard let dataDir = scheduler["data_dir"] as? String, !dataDir.isEmpty else {
            throw ConfigError(key: "scheduler.data_dir", reason: "required: a directory path")
        }
        var config = SchedulerConfiguration(
            members: members, secret: secret, dataDirectory: dataDir.replacingOccurrences(of: "{id}", with: String(id)))
        config.unusedConfigKeys = cluster.unusedKeys
        config.clusterName = cluster.name
        config.tracing = try TracingConfiguration.parse(root)
        // One file for the trio: `{id}` in the certificate's and key's paths is the node's id.
        config.tls = cluster.tls.map {
            TLSFiles(
                ca: $0.ca, certificate: $0.certificate.replacingOccurrences(of: "{id}", with: String(id)),
                key: $0.key.replacingOccurrences(of: "{id}", with: String(id)))
        }
        config.tickMilliseconds = try ConfigFile.int(scheduler, "scheduler.tick_ms", default: 50, range: 5...5_000)
        config.electionTicks = try ConfigFile.int(scheduler, "scheduler.election_ticks", default: 8, range: 3...1_000)
        config.heartbeatTimeoutMilliseconds = try ConfigFile.int(scheduler, "scheduler.heartbeat_timeout_ms", default: 3_000, range: 100...600_000)
        config.reportIntervalMilliseconds = try ConfigFile.int(scheduler, "scheduler.report_interval_ms", default: 250, range: 10...60_000)
        config.affinityBatchMilliseconds = try ConfigFile.int(scheduler, "scheduler.affinity_batch_ms", default: 100, range: 5...10_000)
        guard config.heartbeatTimeoutMilliseconds >= 2 * config.reportIntervalMilliseconds else {
            throw ConfigError(
                key: "scheduler.heartbeat_timeout_ms",
                reason: "at least twice scheduler.report_interval_ms (\(config.reportIntervalMilliseconds)): shorter, an instance is marked down between two of its agent's reports")
        }
        if let listen = scheduler["listen"] {
            // Port 0 (any free port) is for a node no peer dials: a one-member group in a test.
            guard let listen = listen as? String, let (host, port) = ConfigFile.splitListenAddress(listen),
                port > 0 || config.members.count == 1
            else {
                throw ConfigError(
                    key: "scheduler.listen",
                    reason: "\"host:port\" (port 1 to 65535; 0 only in a one-member group, which no peer dials): where this node listens, when not at its cluster.schedulers address")
            }
            config.listen = (host, port)
        }
        if let overrides = scheduler["peer_addresses"] {
            guard let overrides = overrides as? [String: Any] else {
                throw ConfigError(key: "scheduler.peer_addresses", reason: "an object of \"peer id\": \"host:port\"")
            }
            for (key, value) in overrides {
                guard let peer = NodeID(key), peer != id, members.contains(where: { $0.id == peer }) else {
                    throw ConfigError(key: "scheduler.peer_addresses.\(key)", reason: "not the id of another scheduler")
                }
                guard let address = value as? String, let (host, port) = ConfigFile.splitAddress(address) else {
                    throw ConfigError(key: "scheduler.peer_addresses.\(key)", reason: "required: \"host:port\"")
                }
                config.peerAddresses[peer] = (host, port)
            }
        }
        if let llm = try ConfigFile.object(root, "llm_scheduler", required: false) {
            if let name = llm["policy"] {
                guard let name = name as? String, let policy = PolicyConfiguration.Name(rawValue: name) else {
                    throw ConfigError(
                        key: "llm_scheduler.policy",
                        reason: "one of \(PolicyConfiguration.Name.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                config.policy.name = policy
            }
            if let params = llm["params"] {
                guard let params = params as? [String: Any] else {
                    throw ConfigError(key: "llm_scheduler.params", reason: "an object of numbers")
                }
                for (key, value) in params {
                    guard let number = value as? Double else {
                        throw ConfigError(key: "llm_scheduler.params.\(key)", reason: "a number")
                    }
                    do { try config.policy.set(key, number) } catch {
                        throw ConfigError(key: "llm_scheduler.params.\(key)", reason: error.description)
                    }
                }
            }
        }
        return config
    }

    public func member(_ id: NodeID) -> Member? { members.first { $0.id == id } }

    /// The address this node dials to reach `peer`.
    public func dialAddress(of peer: Member) -> (host: String, port: Int) {
        peerAddresses[peer.id] ?? (peer.host, peer.port)
    }
}
