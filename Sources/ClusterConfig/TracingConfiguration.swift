import Foundation

/// The config file's `tracing` section: where the gateway and the schedulers send OpenTelemetry
/// spans (OTLP over HTTP, protobuf-encoded: the encoding every collector takes; swift-otel's
/// JSON encoding writes ids in base64 where OTLP/JSON wants hex, so it is not offered) and how
/// many requests they trace. Absent, nothing is traced and the
/// data path does no tracing work at all.
public struct TracingConfiguration: Sendable, Equatable {
    /// The collector's base URL (`http://host:4318`); spans go to `<base>/v1/traces`, as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` means it.
    public var endpoint: String
    /// The share of requests without a sampled parent that are traced (0 to 1). A client's
    /// `traceparent` decides for its own requests: sampled is traced, not sampled is not.
    public var sampleRatio: Double = 1
    public var exportTimeoutMilliseconds = 10_000
    /// Headers sent with every export (a collector's API key).
    public var headers: [String: String] = [:]

    public init(endpoint: String) {
        self.endpoint = endpoint
    }

    /// The URL spans are posted to.
    public var tracesURL: String { endpoint.hasSuffix("/") ? endpoint + "v1/traces" : endpoint + "/v1/traces" }

    /// nil when the file has no `tracing` section (or it says `"enabled": false`).
    public static func parse(_ root: [String: Any]) throws(ConfigError) -> TracingConfiguration? {
        guard let section = try ConfigFile.object(root, "tracing", required: false) else { return nil }
        guard try ConfigFile.bool(section, "tracing.enabled", default: true) else { return nil }
        guard let endpoint = try ConfigFile.string(section, "tracing.otlp_endpoint"),
            let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host?.isEmpty == false
        else {
            throw ConfigError(key: "tracing.otlp_endpoint", reason: "required: the collector's OTLP/HTTP base URL, http(s)://host:port")
        }
        var config = TracingConfiguration(endpoint: endpoint)
        if let raw = section["sample_ratio"] {
            // A JSON `true` is an NSNumber too (of type "c"): it is not a ratio.
            guard let number = raw as? NSNumber, String(cString: number.objCType) != "c", (0...1).contains(number.doubleValue) else {
                throw ConfigError(key: "tracing.sample_ratio", reason: "a number from 0 to 1")
            }
            config.sampleRatio = number.doubleValue
        }
        config.exportTimeoutMilliseconds = try ConfigFile.int(section, "tracing.export_timeout_ms", default: 10_000, range: 100...120_000)
        if let raw = section["headers"] {
            guard let headers = raw as? [String: Any], let strings = headers as? [String: String] else {
                throw ConfigError(key: "tracing.headers", reason: "an object of \"name\": \"value\" strings")
            }
            config.headers = strings
        }
        return config
    }
}
