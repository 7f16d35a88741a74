import Crypto
import Foundation
import NIOHTTP1

/// Whether a request asks for a WebSocket, and the handshake's answer (RFC 6455 §4.2). Decided
/// per request, so an upgrade on the second request of a keep-alive connection (as any pooling
/// proxy in front sends it) is as good as one on the first. A value; the handler only acts on it.
enum WebSocketUpgrade: Equatable {
    /// Not an upgrade request: an ordinary HTTP request.
    case notRequested
    /// Switch protocols with this `Sec-WebSocket-Accept`.
    case accept(String)
    /// An upgrade request that cannot be honoured, and why.
    case refuse(String)

    static let magic = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    static func decide(_ head: HTTPRequestHead) -> WebSocketUpgrade {
        let upgrade = head.headers[canonicalForm: "upgrade"].map { $0.lowercased() }
        guard upgrade.contains("websocket") else { return .notRequested }
        guard head.method == .GET else { return .refuse("A WebSocket upgrade must be a GET.") }
        guard head.headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            return .refuse("A WebSocket upgrade needs 'Connection: Upgrade'.")
        }
        guard head.headers.first(name: "sec-websocket-version") == "13" else { return .refuse("Only WebSocket version 13 is spoken.") }
        guard let key = head.headers.first(name: "sec-websocket-key"), let raw = Data(base64Encoded: key), raw.count == 16 else {
            return .refuse("The Sec-WebSocket-Key header is missing or malformed.")
        }
        return .accept(acceptValue(for: key))
    }

    static func acceptValue(for key: String) -> String {
        Data(Insecure.SHA1.hash(data: Data((key + magic).utf8))).base64EncodedString()
    }

    /// The 101 response's head.
    static func switchingHead(version: HTTPVersion, accept: String) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: accept)
        return HTTPResponseHead(version: version, status: .switchingProtocols, headers: headers)
    }
}
