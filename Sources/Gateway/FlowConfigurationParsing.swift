import ClusterConfig
import FlowControl

/// `llm_gateway.priority_classes`, `llm_gateway.tenants`, `llm_gateway.assumed_completion_tokens` and
/// `llm_gateway.cluster_budgets`
/// (Docs/configuration.md, "Tenants and priority classes"): read into the flow controller's
/// configuration, every mistake named by its key.
enum FlowConfigurationParsing {
    /// `ttl`: the time to live of a class that sets none (`wait_schedule_timeout`).
    static func parse(_ section: [String: Any]?, queueCapacity: Int, ttl: Int, clients: Set<String>) throws(ConfigError) -> FlowConfiguration {
        let classes = try parseClasses(section?["priority_classes"], ttl: ttl)
        let tenants = try parseTenants(section?["tenants"], classes: classes, clients: clients)
        let assumed = try ConfigFile.int(section, "llm_gateway.assumed_completion_tokens", default: 256, range: 1...1_000_000)
        let cluster = try ConfigFile.bool(section, "llm_gateway.cluster_budgets", default: true)
        return FlowConfiguration(
            classes: classes, tenants: tenants, queueCapacity: queueCapacity, assumedCompletionTokens: assumed, clusterBudgets: cluster)
    }

    static let classKeys = ["name", "ttl_ms", "aging_ms", "headroom", "engine_priority"]
    static let headroomKeys = ["max_waiting", "max_kv_usage", "max_running", "max_prefill_ms"]
    static let tenantKeys = ["class", "weight", "max_concurrent", "requests_per_minute", "tokens_per_minute"]

    static func parseClasses(_ value: Any?, ttl defaultTTL: Int) throws(ConfigError) -> [PriorityClass] {
        let key = "llm_gateway.priority_classes"
        let fallbackTTL = defaultTTL
        guard let value else { return PriorityClass.defaults(ttl: .milliseconds(fallbackTTL)) }
        guard let list = value as? [Any], (1...16).contains(list.count) else {
            throw ConfigError(key: key, reason: "a list of 1 to 16 classes, highest first: {\"name\": NAME, \"ttl_ms\": MS, \"aging_ms\": MS, \"headroom\": {...}}")
        }
        var classes: [PriorityClass] = []
        for (index, item) in list.enumerated() {
            let at = "\(key)[\(index)]"
            guard let entry = item as? [String: Any] else { throw ConfigError(key: at, reason: "an object") }
            try rejectUnknown(entry, known: classKeys, at: at)
            guard let name = entry["name"] as? String, isValidName(name) else {
                throw ConfigError(key: "\(at).name", reason: "required: 1 to 32 letters, digits, '-' or '_' (it labels metrics)")
            }
            guard !classes.contains(where: { $0.name == name }) else { throw ConfigError(key: "\(at).name", reason: "'\(name)' is named twice") }
            let ttl = try ConfigFile.int(entry, "\(at).ttl_ms", default: fallbackTTL, range: 0...86_400_000)
            let aging = try ConfigFile.optionalInt(entry, "\(at).aging_ms", range: 1...86_400_000)
            var headroom: Headroom?
            if let raw = entry["headroom"] {
                guard let room = raw as? [String: Any] else { throw ConfigError(key: "\(at).headroom", reason: "an object") }
                try rejectUnknown(room, known: headroomKeys, at: "\(at).headroom")
                let kv = room["max_kv_usage"] ?? 1.0
                guard let kvUsage = kv as? Double, (0...1).contains(kvUsage), !(kv is Bool) else {
                    throw ConfigError(key: "\(at).headroom.max_kv_usage", reason: "a number from 0 to 1")
                }
                headroom = Headroom(
                    maxWaiting: try ConfigFile.int(room, "\(at).headroom.max_waiting", default: 0, range: 0...1_000_000),
                    maxKVUsage: kvUsage,
                    maxRunning: try ConfigFile.int(room, "\(at).headroom.max_running", default: 0, range: 0...1_000_000),
                    maxPrefillMilliseconds: try ConfigFile.int(room, "\(at).headroom.max_prefill_ms", default: 0, range: 0...3_600_000))
            }
            let enginePriority = try ConfigFile.optionalInt(entry, "\(at).engine_priority", range: -1_000_000...1_000_000)
            classes.append(
                PriorityClass(
                    name: name, ttl: .milliseconds(ttl), agingAfter: aging.map { .milliseconds($0) }, headroom: headroom,
                    enginePriority: enginePriority))
        }
        return classes
    }

    static func parseTenants(_ value: Any?, classes: [PriorityClass], clients: Set<String>) throws(ConfigError) -> [TenantPolicy] {
        let key = "llm_gateway.tenants"
        guard let value else { return [] }
        guard let object = value as? [String: Any], object.count <= 1_024 else {
            throw ConfigError(key: key, reason: "an object of at most 1,024 tenants by client name: {\"NAME\": {\"class\": CLASS, ...}}")
        }
        var tenants: [TenantPolicy] = []
        for (name, item) in object.sorted(by: { $0.key < $1.key }) {
            let at = "\(key).\(name)"
            guard let entry = item as? [String: Any] else { throw ConfigError(key: at, reason: "an object") }
            try rejectUnknown(entry, known: tenantKeys, at: at)
            guard name == FlowConfiguration.defaultTenantName || clients.contains(name) else {
                throw ConfigError(
                    key: at,
                    reason: "no llm_gateway.api_keys entry names this client: a tenant is an API key's client (or \"default\", for requests without one)")
            }
            let className = try ConfigFile.string(entry, "\(at).class") ?? "standard"
            guard let rank = classes.firstIndex(where: { $0.name == className }) else {
                throw ConfigError(key: "\(at).class", reason: "one of the priority classes: \(classes.map(\.name).joined(separator: ", "))")
            }
            let weight = entry["weight"] ?? 1.0
            guard let share = weight as? Double, share > 0, share <= 1_000, !(weight is Bool) else {
                throw ConfigError(key: "\(at).weight", reason: "a number above 0, at most 1000")
            }
            tenants.append(
                TenantPolicy(
                    name: name, classRank: rank, weight: share,
                    maxConcurrent: try ConfigFile.optionalInt(entry, "\(at).max_concurrent", range: 1...1_000_000),
                    requestsPerMinute: try ConfigFile.optionalInt(entry, "\(at).requests_per_minute", range: 1...100_000_000),
                    tokensPerMinute: try ConfigFile.optionalInt(entry, "\(at).tokens_per_minute", range: 1...1_000_000_000_000)))
        }
        return tenants
    }

    private static func rejectUnknown(_ entry: [String: Any], known: [String], at: String) throws(ConfigError) {
        if let unknown = entry.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigError(key: "\(at).\(unknown)", reason: "unknown key: one of \(known.joined(separator: ", "))")
        }
    }

    private static func isValidName(_ name: String) -> Bool {
        (1...32).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 }
    }
}
