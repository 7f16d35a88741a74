import AsyncHTTPClient
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// `GET /v1/ws`: a WebSocket on which each text message is one OpenAI request body (`messages`
/// makes it a chat completion, `prompt` a completion). The replies are the JSON chunks an SSE
/// stream would carry, one message each (or the whole JSON answer when the request does not
/// stream), then a text message `[DONE]`. An error is one message in OpenAI's error shape, then
/// `[DONE]`. Requests on one connection are answered in turn. The API key goes in the upgrade
/// request's `Authorization` header.
struct GatewayWebSocket {
    let state: GatewayState

    func add(to router: Router<BasicWebSocketRequestContext>) {
        let state = self.state
        router.ws(
            "/v1/ws",
            // A refused upgrade can only be an empty 400, so the key is checked after it: a wrong
            // key gets OpenAI's 401 error as a message and a policy-violation close.
            shouldUpgrade: { _, _ in .upgrade([:]) },
            onUpgrade: { inbound, outbound, context in
                do { try GatewayRoutes.authorize(context.request.headers, keys: state.config.apiKeys) } catch let error as OpenAIError {
                    try await outbound.writeTextMessage(error.json)
                    try await outbound.close(.policyViolation, reason: "invalid API key")
                    return
                }
                var headers = context.request.headers
                headers[.contentType] = "application/json"
                for try await message in inbound.messages(maxSize: state.config.maxBodyBytes) {
                    guard case .text(let text) = message else {
                        try await Self.fail(OpenAIError.invalidRequest("Send each request as a text message holding its JSON body."), outbound)
                        continue
                    }
                    try await answer(text, headers: headers, outbound)
                }
            })
    }

    private func answer(_ text: String, headers: HTTPFields, _ outbound: WebSocketOutboundWriter) async throws {
        let body = Array(text.utf8)
        state.metrics.requestStarted()
        defer { state.metrics.requestEnded() }
        do {
            let kind: RequestFeatures.Kind = text.contains("\"messages\"") ? .chat : .completion
            let features = try RequestFeatures.read(body, kind: kind, chunkBytes: state.config.chunkBytes)
            let attempt = ProxyAttempt(
                gateway: state, method: .post, path: kind == .chat ? "/v1/chat/completions" : "/v1/completions", headers: headers,
                body: ByteBuffer(bytes: body), features: features, requestID: state.nextRequestID())
            var meter = StreamMeter(started: attempt.started)
            switch try await attempt.open() {
            case .whole(let response, let body, let source):
                meter.saw(body)
                try await outbound.writeTextMessage(String(buffer: body))
                let usage = meter.usage
                attempt.finish(source, outcome: response.status.code < 400 ? .ok : .clientError, usage: usage, firstByte: meter.firstByte)
                state.metrics.completed(status: Int(response.status.code), meter: meter, usage: usage)
            case .stream(let response, let first, let handover, let source):
                var events = SSEEventSplitter()
                var pending = first
                guard var rest = handover.take() else { break }
                do {
                    while let chunk = try await Self.next(&pending, &rest) {
                        meter.saw(chunk)
                        for payload in events.feed(chunk) where payload != "[DONE]" { try await outbound.writeTextMessage(payload) }
                    }
                    let usage = meter.usage
                    attempt.finish(source, outcome: response.status.code < 400 ? .ok : .clientError, usage: usage, firstByte: meter.firstByte)
                    state.metrics.completed(status: Int(response.status.code), meter: meter, usage: usage)
                } catch {
                    attempt.finish(source, outcome: .engineError, usage: meter.usage, firstByte: meter.firstByte)
                    state.metrics.upstreamError(source.instance.id)
                    throw OpenAIError.upstream("The engine \(source.instance.id) failed while answering: \(error)")
                }
            }
            try await outbound.writeTextMessage("[DONE]")
        } catch let error as OpenAIError {
            try await Self.fail(error, outbound)
        }
    }

    /// The chunk already read, if any, else the next one from the engine.
    private static func next(_ pending: inout ByteBuffer?, _ rest: inout HTTPClientResponse.Body.AsyncIterator) async throws -> ByteBuffer? {
        if let chunk = pending {
            pending = nil
            return chunk
        }
        return try await rest.next()
    }

    private static func fail(_ error: OpenAIError, _ outbound: WebSocketOutboundWriter) async throws {
        try await outbound.writeTextMessage(error.json)
        try await outbound.writeTextMessage("[DONE]")
    }
}

/// Cuts an SSE byte stream into the payloads of its `data:` lines, event by event.
struct SSEEventSplitter {
    private var pending: [UInt8] = []

    mutating func feed(_ chunk: ByteBuffer) -> [String] {
        pending.append(contentsOf: chunk.readableBytesView)
        var payloads: [String] = []
        while let end = Self.eventEnd(in: pending) {
            let event = String(decoding: pending[..<end.start], as: UTF8.self)
            pending.removeFirst(end.next)
            let data = event.split(separator: "\n", omittingEmptySubsequences: false)
                .compactMap { line -> Substring? in
                    let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
                    guard trimmed.hasPrefix("data:") else { return nil }
                    let value = trimmed.dropFirst(5)
                    return value.hasPrefix(" ") ? value.dropFirst() : value
                }
            if !data.isEmpty { payloads.append(data.joined(separator: "\n")) }
        }
        return payloads
    }

    /// Where the first blank line (`\n\n` or `\r\n\r\n`) is: the event's end and where the next starts.
    private static func eventEnd(in bytes: [UInt8]) -> (start: Int, next: Int)? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A, bytes[index + 1] == 0x0A { return (index, index + 2) }
            if index + 3 < bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                return (index, index + 4)
            }
            index += 1
        }
        return nil
    }
}
