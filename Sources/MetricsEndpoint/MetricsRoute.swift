/// What the metrics endpoint answers for a request line: decided from the method and the path
/// alone, so every answer the endpoint can give is tested without a socket.
public enum MetricsRoute: Equatable, Sendable {
    /// `GET /metrics`: the Prometheus text exposition.
    case metrics
    /// `GET /healthz` (liveness): the process answers. Always 200 while it runs.
    case health
    /// `GET /readyz` (readiness): 200 when the process can do its job (a scheduler that knows a
    /// leader, an agent whose engine is registered), else 503 with the reason.
    case ready
    case notFound
    case methodNotAllowed

    public init(method: String, uri: String) {
        // The query string is ignored (Prometheus sends none; a `?` must not turn a known path
        // into a 404).
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        let route: MetricsRoute? =
            switch path {
            case "/metrics": .metrics
            case "/healthz", "/health": .health
            case "/readyz", "/ready": .ready
            default: nil
            }
        guard let route else {
            self = .notFound
            return
        }
        self = method == "GET" || method == "HEAD" ? route : .methodNotAllowed
    }

    /// The content type Prometheus expects for the classic text format.
    public static let expositionContentType = "text/plain; version=0.0.4; charset=utf-8"
}
