import AsyncHTTPClient
import HTTPTypes
import NIOCore
import NIOHTTP1

/// Sends a client's request on to an engine: the body byte for byte as the client sent it, the
/// client's headers but the hop-by-hop ones (and the gateway's own credentials).
struct Upstream: Sendable {
    let http: HTTPClient
    let timeout: TimeAmount

    /// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), plus those
    /// the HTTP client sets itself.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    enum Failure: Error, CustomStringConvertible {
        /// No HTTP answer: refused, reset, timed out.
        case unreachable(String)
        var description: String {
            switch self { case .unreachable(let why): "unreachable: \(why)" }
        }
    }

    func send(
        method: HTTPRequest.Method, path: String, headers: HTTPFields, body: ByteBuffer, to endpoint: String, dropAuthorization: Bool
    ) async throws(Failure) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = HTTPMethod(rawValue: method.rawValue)
        for field in headers {
            let name = field.name.canonicalName
            if Self.hopByHop.contains(name) || (dropAuthorization && name == "authorization") { continue }
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        request.body = .bytes(body)
        do {
            return try await http.execute(request, timeout: timeout)
        } catch {
            throw .unreachable("\(error)")
        }
    }

    static func isEventStream(_ response: HTTPClientResponse) -> Bool {
        response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") ?? false
    }

    /// The engine's response headers worth passing to the client.
    static func responseFields(_ headers: HTTPHeaders) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers where !hopByHop.contains(name.lowercased()) {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        return fields
    }
}
