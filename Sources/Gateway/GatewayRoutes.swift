import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import NIOCore

/// The gateway's HTTP face: the OpenAI API (chat, completions, any other `POST /v1/*` passed
/// through, the union of models), `/health`, `/ready` and `/metrics`.
struct GatewayRoutes {
    let state: GatewayState

    func add(to router: Router<BasicRequestContext>) {
        router.post("/v1/chat/completions") { request, _ in await self.inference(request, kind: .chat) }
        router.post("/v1/completions") { request, _ in await self.inference(request, kind: .completion) }
        router.post("/v1/**") { request, _ in await self.inference(request, kind: .other) }
        router.get("/v1/models") { request, _ in await self.models(request) }
        // Reached when a WebSocket upgrade was refused (or not asked for): say why.
        router.get("/v1/ws") { request, _ in
            do { try authorize(request) } catch let error as OpenAIError { return Self.errorResponse(error) }
            return Self.errorResponse(OpenAIError(status: 426, message: "Connect with a WebSocket upgrade.", type: "invalid_request_error"))
        }
        router.get("/health") { _, _ in Response(status: .ok) }
        router.get("/ready") { _, _ in await self.ready() }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: state.metrics.registry.emitToBuffer())))
        }
    }

    private func inference(_ request: Request, kind: RequestFeatures.Kind) async -> Response {
        var request = request
        let path = request.uri.path
        do {
            try authorize(request)
            let body: ByteBuffer
            do { body = try await request.collectBody(upTo: state.config.maxBodyBytes) } catch is NIOTooManyBytesError {
                throw OpenAIError.tooLarge(limit: state.config.maxBodyBytes)
            }
            let features = try RequestFeatures.read(Array(buffer: body), kind: kind, chunkBytes: state.config.chunkBytes)
            let response = try await ProxyAttempt(
                gateway: state, method: request.method, path: request.uri.string, headers: request.headers, body: body,
                features: features, requestID: state.nextRequestID()
            ).run()
            state.metrics.answered(path: path, status: Int(response.status.code), instance: response.headers[HTTPField.Name("X-Junction-Instance")!])
            return response
        } catch let error as OpenAIError {
            state.metrics.answered(path: path, status: error.status, instance: nil)
            return Self.errorResponse(error)
        } catch {
            let wrapped = OpenAIError(status: 500, message: "\(error)", type: "server_error")
            state.metrics.answered(path: path, status: 500, instance: nil)
            return Self.errorResponse(wrapped)
        }
    }

    /// `Authorization: Bearer KEY`, or the bare key as in the seed's example.
    private func authorize(_ request: Request) throws(OpenAIError) { try Self.authorize(request.headers, keys: state.config.apiKeys) }

    static func authorize(_ headers: HTTPFields, keys: Set<String>) throws(OpenAIError) {
        guard !keys.isEmpty else { return }
        guard let value = headers[.authorization] else { throw .unauthorized() }
        let key = value.hasPrefix("Bearer ") ? String(value.dropFirst(7)) : value
        guard keys.contains(key.trimmingCharacters(in: .whitespaces)) else { throw .unauthorized() }
    }

    /// The models of every up instance in the cached table, in OpenAI's list shape.
    private func models(_ request: Request) async -> Response {
        do { try authorize(request) } catch { return Self.errorResponse(error) }
        let models = Set(await state.link.store.instances.filter(\.isUp).map(\.model)).sorted()
        let data = models.map { ["id": $0, "object": "model", "created": 0, "owned_by": "junction"] as [String: Any] }
        let json = (try? JSONSerialization.data(withJSONObject: ["object": "list", "data": data], options: [.sortedKeys])) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// Ready when it knows at least one up instance to send to.
    private func ready() async -> Response {
        let up = await state.link.store.instances.filter(\.isUp).count
        return Response(status: up > 0 ? .ok : .serviceUnavailable)
    }

    static func errorResponse(_ error: OpenAIError) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retry = error.retryAfterSeconds { headers[.retryAfter] = String(retry) }
        return Response(
            status: HTTPResponse.Status(code: error.status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: error.json)))
    }
}
