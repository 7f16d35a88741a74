import Foundation
import Raft
import Routing

/// `junction scheduler --config FILE --id N`: the cluster's schedulers and secret, this node's
/// data directory and timings, and the seed's `llm_scheduler.policy`. Docs/configuration.md
/// lists every key with its unit and default.
public struct SchedulerConfiguration: Sendable {
    public struct Member: Sendable, Equatable {
        public var id: NodeID
        public var host: String
        public var port: Int
    }

    public var members: [Member]
    public var secret: String
    public var dataDirectory: String
    public var tickMilliseconds = 50
    public var electionTicks = 10
    public var heartbeatTimeoutMilliseconds = 3_000
    public var reportIntervalMilliseconds = 250
    public var affinityBatchMilliseconds = 100
    public var policy = PolicyConfiguration()

    public struct ConfigError: Error, CustomStringConvertible, Equatable {
        public var key: String
        public var reason: String
        public var description: String { "config: \(key): \(reason)" }
    }

    /// Reads the file; `{id}` in `scheduler.data_dir` becomes the node's id.
    public static func load(path: String, id: NodeID) throws(ConfigError) -> SchedulerConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: path, reason: "cannot read the file")
        }
        let root: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ConfigError(key: path, reason: "the file must hold a JSON object")
            }
            root = object
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(key: path, reason: "not valid JSON: \(error.localizedDescription)")
        }
        return try parse(root, id: id)
    }

    public static func parse(_ root: [String: Any], id: NodeID) throws(ConfigError) -> SchedulerConfiguration {
        let cluster = try object(root, "cluster", required: true)!
        guard let secret = cluster["secret"] as? String, secret.count >= 16 else {
            throw ConfigError(key: "cluster.secret", reason: "required: a string of at least 16 characters")
        }
        guard let list = cluster["schedulers"] as? [[String: Any]], !list.isEmpty else {
            throw ConfigError(key: "cluster.schedulers", reason: "required: a list of {\"id\": N, \"address\": \"host:port\"}")
        }
        var members: [Member] = []
        for (index, entry) in list.enumerated() {
            let key = "cluster.schedulers[\(index)]"
            guard let memberID = (entry["id"] as? Int).flatMap({ $0 > 0 ? NodeID($0) : nil }) else {
                throw ConfigError(key: key + ".id", reason: "required: a positive integer")
            }
            guard let address = entry["address"] as? String, let (host, port) = splitAddress(address) else {
                throw ConfigError(key: key + ".address", reason: "required: \"host:port\"")
            }
            guard !members.contains(where: { $0.id == memberID }) else {
                throw ConfigError(key: key + ".id", reason: "id \(memberID) appears twice")
            }
            members.append(Member(id: memberID, host: host, port: port))
        }
        guard members.contains(where: { $0.id == id }) else {
            throw ConfigError(key: "cluster.schedulers", reason: "no scheduler has id \(id) (--id)")
        }
        let scheduler = try object(root, "scheduler", required: true)!
        guard let dataDir = scheduler["data_dir"] as? String, !dataDir.isEmpty else {
            throw ConfigError(key: "scheduler.data_dir", reason: "required: a directory path")
        }
        var config = SchedulerConfiguration(
            members: members, secret: secret, dataDirectory: dataDir.replacingOccurrences(of: "{id}", with: String(id)))
        config.tickMilliseconds = try int(scheduler, "scheduler.tick_ms", "tick_ms", default: 50, range: 5...5_000)
        config.electionTicks = try int(scheduler, "scheduler.election_ticks", "election_ticks", default: 10, range: 3...1_000)
        config.heartbeatTimeoutMilliseconds = try int(
            scheduler, "scheduler.heartbeat_timeout_ms", "heartbeat_timeout_ms", default: 3_000, range: 100...600_000)
        config.reportIntervalMilliseconds = try int(
            scheduler, "scheduler.report_interval_ms", "report_interval_ms", default: 250, range: 10...60_000)
        config.affinityBatchMilliseconds = try int(
            scheduler, "scheduler.affinity_batch_ms", "affinity_batch_ms", default: 100, range: 5...10_000)
        if let llm = try object(root, "llm_scheduler", required: false) {
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

    private static func object(_ root: [String: Any], _ key: String, required: Bool) throws(ConfigError) -> [String: Any]? {
        guard let value = root[key] else {
            if required { throw ConfigError(key: key, reason: "required section missing") }
            return nil
        }
        guard let object = value as? [String: Any] else { throw ConfigError(key: key, reason: "must be an object") }
        return object
    }

    private static func int(
        _ section: [String: Any], _ fullKey: String, _ key: String, default value: Int, range: ClosedRange<Int>
    ) throws(ConfigError) -> Int {
        guard let raw = section[key] else { return value }
        guard let number = raw as? Int, range.contains(number) else {
            throw ConfigError(key: fullKey, reason: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    static func splitAddress(_ address: String) -> (String, Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65_535).contains(port), colon > address.startIndex
        else { return nil }
        return (String(address[..<colon]), port)
    }
}
