/// Where an engine listens, parsed once from its registered endpoint URL (`http://host:port` with
/// an optional path prefix). Engines are reached over plain HTTP/1.1 inside the cluster.
struct EngineAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    /// Prepended to the client's path (an engine behind a path-routing proxy).
    var basePath: String

    init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst("http://".count)
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var hostPart = Substring(rest)
        var port = 80
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let parsed = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(parsed) else { return nil }
            port = parsed
            hostPart = rest[..<colon]
        }
        if hostPart.hasPrefix("["), hostPart.hasSuffix("]") { hostPart = hostPart.dropFirst().dropLast() }
        guard !hostPart.isEmpty else { return nil }
        host = String(hostPart)
        self.port = port
        basePath = path
    }

    /// The `Host` header value.
    var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var description: String { "http://\(authority)\(basePath)" }
}
