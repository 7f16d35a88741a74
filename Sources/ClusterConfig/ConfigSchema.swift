/// Every key of the config file all Junction processes share, by section. A key not listed is
/// an error that names the nearest known key: a misspelt key (`api_key` for `api_keys`) would
/// otherwise leave its setting at the default without a word, and that default may be "open".
///
/// Each process checks the whole file, not only its own sections, so one file is either right
/// for every process or refused by all of them, and `junction config check` says the same.
public enum ConfigSchema {
    public static let sections: [String: [String]] = [
        "cluster": ["name", "secret", "credential", "credential_file", "schedulers", "tls"],
        "scheduler": ["data_dir", "tick_ms", "election_ticks", "heartbeat_timeout_ms", "report_interval_ms", "affinity_batch_ms", "peer_addresses", "listen"],
        "llm_scheduler": ["policy", "params"],
        "llm_gateway": [
            "listen", "api_keys", "infer_backend", "max_body_bytes", "max_queue_size", "wait_schedule_timeout", "wait_schedule_try_period",
            "retry_count", "scheduler_timeout_ms", "chunk_bytes", "max_prefix_chunks", "table_cache_path", "upstream_connect_timeout_ms", "upstream_timeout_ms",
            "response_headers_timeout_ms", "first_token_timeout_ms", "stream_idle_timeout_ms", "client_idle_timeout_ms",
            "max_client_connections", "upstream_idle_timeout_ms", "upstream_max_idle_per_engine", "pd_handoff", "access_log", "tls", "engine_ca",
            "priority_classes", "tenants", "assumed_completion_tokens", "cluster_budgets",
        ],
        "tracing": ["enabled", "otlp_endpoint", "sample_ratio", "export_timeout_ms", "headers"],
        "agent": ["engine", "model", "role", "bootstrap_port", "scrape_interval_ms", "scrape_timeout_ms", "filter_metrics", "health_failures", "drain_timeout_ms", "engine_ca"],
    ]

    /// Keys of each entry of `cluster.schedulers`.
    static let memberKeys = ["id", "address"]

    /// The seed's deployment keys (its PAI-EAS service JSON): accepted, so that such a file with
    /// a `cluster` section added starts unchanged, but Junction does not use them.
    public static let acceptedUnused = ["cloud", "metadata", "llm_scheduler.cpu", "llm_scheduler.memory", "llm_scheduler.instance_type"]

    /// What is wrong with a config file's top-level object (unknown sections and keys), and the
    /// keys it accepts without using them.
    public static func check(_ root: [String: Any]) -> (errors: [ConfigError], unused: [String]) {
        var errors: [ConfigError] = []
        var unused: [String] = []
        for (section, value) in root.sorted(by: { $0.key < $1.key }) {
            if acceptedUnused.contains(section) {
                unused.append(section)
                continue
            }
            guard let known = sections[section] else {
                errors.append(unknown(section, among: Array(sections.keys) + acceptedUnused))
                continue
            }
            guard let object = value as? [String: Any] else { continue }  // the section's parser says "must be an object"
            for key in object.keys.sorted() where !known.contains(key) {
                let full = "\(section).\(key)"
                if acceptedUnused.contains(full) {
                    unused.append(full)
                } else if let elsewhere = sections.first(where: { $0.key != section && $0.value.contains(key) }) {
                    errors.append(ConfigError(key: full, reason: "unknown key here; did you mean \(elsewhere.key).\(key)?"))
                } else {
                    errors.append(unknown(full, among: known.map { "\(section).\($0)" }))
                }
            }
            if section == "cluster", let members = object["schedulers"] as? [[String: Any]] {
                for (index, member) in members.enumerated() {
                    for key in member.keys.sorted() where !memberKeys.contains(key) {
                        errors.append(unknown("cluster.schedulers[\(index)].\(key)", among: memberKeys.map { "cluster.schedulers[\(index)].\($0)" }))
                    }
                }
            }
        }
        return (errors, unused)
    }

    /// Throws the first problem `check` finds; returns the keys accepted without being used.
    public static func validate(_ root: [String: Any]) throws(ConfigError) -> [String] {
        let (errors, unused) = check(root)
        if let first = errors.first { throw first }
        return unused
    }

    private static func unknown(_ key: String, among known: [String]) -> ConfigError {
        guard let nearest = nearest(to: key, among: known) else {
            return ConfigError(key: key, reason: "unknown key")
        }
        return ConfigError(key: key, reason: "unknown key; did you mean \(nearest)?")
    }

    /// The known key closest to `key` by edit distance, if it is close enough to be a slip.
    static func nearest(to key: String, among known: [String]) -> String? {
        let candidates = known.map { ($0, editDistance(key, $0)) }.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
        guard let best = candidates.first else { return nil }
        let leaf = key.split(separator: ".").last.map(String.init) ?? key
        return best.1 <= max(2, leaf.count / 3) ? best.0 : nil
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
