/// Where a process finds its TLS material: PEM files, read when the process starts (a file that
/// cannot be read or parsed stops it with the key named, not the first handshake).
public struct TLSFiles: Sendable, Equatable {
    /// The CA certificate(s) peers' certificates must chain to; nil where none is asked for
    /// (a server that does not check its clients' certificates).
    public var ca: String?
    /// This process's certificate chain, its own certificate first.
    public var certificate: String
    public var key: String

    public init(ca: String?, certificate: String, key: String) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }

    static let keys = ["ca", "certificate", "key"]

    /// `{"ca": PATH, "certificate": PATH, "key": PATH}` at `key`.
    public static func parse(_ value: Any, key: String, needsCA: Bool) throws(ConfigError) -> TLSFiles {
        let allowed = needsCA ? keys : ["certificate", "key"]
        guard let object = value as? [String: Any] else {
            throw ConfigError(key: key, reason: "an object {\(allowed.map { "\"\($0)\": PATH" }.joined(separator: ", "))}")
        }
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ConfigError(key: "\(key).\(unknown)", reason: "unknown key; the keys are \(allowed.joined(separator: ", "))")
        }
        func path(_ name: String) throws(ConfigError) -> String {
            guard let path = object[name] as? String, !path.isEmpty else {
                throw ConfigError(key: "\(key).\(name)", reason: "required: the path of a PEM file")
            }
            return path
        }
        return TLSFiles(ca: needsCA ? try path("ca") : nil, certificate: try path("certificate"), key: try path("key"))
    }
}
