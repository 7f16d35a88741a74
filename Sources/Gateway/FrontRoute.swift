import GatewayCore
import NIOHTTP1

/// Which of the gateway's routes a request head names. Pure: tested without a server.
enum FrontRoute: Equatable {
    case health
    case ready
    case metrics
    case models
    /// `GET /v1/ws`: a WebSocket upgrade (or a 426 when it is not one).
    case webSocket
    case inference(RequestFeatures.Kind)
    case notFound

    static func decide(method: HTTPMethod, uri: String) -> FrontRoute {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        switch (method, path) {
        case (.GET, "/health"): return .health
        case (.GET, "/ready"): return .ready
        case (.GET, "/metrics"): return .metrics
        case (.GET, "/v1/models"): return .models
        case (.GET, "/v1/ws"): return .webSocket
        case (.POST, "/v1/chat/completions"): return .inference(.chat)
        case (.POST, "/v1/completions"): return .inference(.completion)
        case (.POST, _) where path.hasPrefix("/v1/"): return .inference(.other)
        default: return .notFound
        }
    }

    /// Routes that serve only a known client when keys are configured. The WebSocket route
    /// checks its key after the upgrade (OpenAI's realtime clients expect the error as a message).
    var needsKey: Bool {
        switch self {
        case .models, .inference: true
        case .health, .ready, .metrics, .webSocket, .notFound: false
        }
    }

    static func path(of uri: String) -> String {
        uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
    }
}
