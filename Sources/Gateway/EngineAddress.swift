/// Where an engine listens, parsed once from its registered endpoint URL (`http://host:port` or
/// `https://host:port`, with an optional path prefix). HTTP/1.1, over TLS for `https`.
struct EngineAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int
    /// `https`: the connection is TLS, the engine's certificate verified (`llm_gateway.engine_ca`).
    var tls: Bool
    /// Prepended to the client's path (an engine behind a path-routing proxy).
    var basePath: String

    init?(url: String) {
        if url.hasPrefix("http://") {
            tls = false
        } else if url.hasPrefix("https://") {
            tls = true
        } else {
            return nil
        }
        var rest = url.dropFirst(tls ? "https://".count : "http://".count)
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var hostPart = Substring(rest)
        var port = tls ? 443 : 80
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

    var description: String { "\(tls ? "https" : "http")://\(authority)\(basePath)" }

    /// The name a TLS engine is verified by and told in SNI; nil for an address literal (then its
    /// certificate must name the IP address).
    var serverName: String? {
        if host.contains(":") || host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy({ UInt8($0) != nil }) { return nil }
        return host
    }
}
