import GatewayCore
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOWebSocket
import Testing

@testable import Gateway

/// The client-facing handlers in process, on an `EmbeddedChannel`: raw HTTP/1.1 bytes in, bytes
/// out, no sockets and no scheduler.
@MainActor
@Suite struct HTTPFrontTests {
    static let key = "front-test-key"

    private func gateway(maxBodyBytes: Int = 4_096) throws -> GatewayShared {
        var config = try GatewayConfiguration.parse([
            "cluster": ["secret": "front-test-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:1"]]],
            "llm_gateway": ["api_keys": [Self.key], "max_body_bytes": maxBodyBytes, "client_idle_timeout_ms": 1_000],
        ])
        config.port = 0
        return try GatewayShared(config: config, loops: [EmbeddedEventLoop()], logger: .init(label: "test"))
    }

    /// A client connection to `shared` (a new gateway when nil).
    private func channel(maxBodyBytes: Int = 4_096, on shared: GatewayShared? = nil) throws -> EmbeddedChannel {
        let shared = try shared ?? gateway(maxBodyBytes: maxBodyBytes)
        let channel = EmbeddedChannel()
        try HTTPFront.install(on: channel, context: LoopContext(loop: channel.embeddedEventLoop, shared: shared))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// A client's text frame (clients mask theirs, RFC 6455 §5.3), short enough for a 7-bit length.
    static func maskedTextFrame(_ text: String) -> ByteBuffer {
        let payload = Array(text.utf8)
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var frame = ByteBuffer(bytes: [0x81, 0x80 | UInt8(payload.count)] + mask)
        frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return frame
    }

    /// The RFC 6455 example handshake, then the loop run so the pipeline swap happens.
    private func upgrade(_ channel: EmbeddedChannel, apiKey: String) throws {
        try send(
            channel,
            "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer \(apiKey)\r\n\r\n")
        channel.embeddedEventLoop.run()
    }

    private func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything the channel wrote, as text (bytes that are not UTF-8 become U+FFFD).
    private func written(_ channel: EmbeddedChannel) throws -> String {
        String(decoding: try writtenBytes(channel), as: UTF8.self)
    }

    private func writtenBytes(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var out: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += Array(buffer: buffer) }
        return out
    }

    @Test func smallRoutesAreAnsweredOnTheConnection() throws {
        let channel = try channel()
        try send(channel, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try written(channel).hasPrefix("HTTP/1.1 200 OK"))
        try send(channel, "GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try written(channel).hasPrefix("HTTP/1.1 503"))  // no instance known yet
        try send(channel, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try written(channel).contains("junction_gateway_requests_in_flight"))
        try send(channel, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try written(channel).hasPrefix("HTTP/1.1 404"))
    }

    @Test func badRequestsGetOpenAIErrorsAndTheConnectionGoesOn() throws {
        let channel = try channel(maxBodyBytes: 1_024)
        let big = String(repeating: "x", count: 2_000)
        try send(channel, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.key)\r\nContent-Length: \(big.utf8.count)\r\n\r\n\(big)")
        let tooLarge = try written(channel)
        #expect(tooLarge.hasPrefix("HTTP/1.1 413") && tooLarge.contains("larger than 1024 bytes"))
        try send(channel, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: \(Self.key)\r\nContent-Length: 9\r\n\r\n{\"model\":")
        let malformed = try written(channel)
        #expect(malformed.hasPrefix("HTTP/1.1 400") && malformed.contains("not valid JSON"))
        #expect(channel.isActive)
    }

    @Test func anUnknownKeyIsRefusedAtTheHeadAndItsBodyIsNeverRead() throws {
        let channel = try channel()
        // Only the head: the answer must not wait for the 100 000 bytes it announces.
        try send(channel, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 100000\r\n\r\n")
        let refused = try written(channel)
        #expect(refused.hasPrefix("HTTP/1.1 401") && refused.contains("invalid_api_key") && refused.lowercased().contains("connection: close"))
        // The connection closes (here at once: an EmbeddedChannel cannot half-close; over TCP it
        // lingers, discarding, for the client to read the 401: test_api_keys.py).
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(try written(channel).isEmpty)
    }

    @Test func aRequestWithoutAKeyAsksNoBodyEvenWhenItOffersToWaitForOne() throws {
        let channel = try channel()
        try send(channel, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        let out = try written(channel)
        #expect(out.hasPrefix("HTTP/1.1 401"), "no 100 Continue before the refusal: \(out)")
        #expect(!out.contains("100 Continue"))
    }

    @Test func refusalsAddNoMetricSeries() throws {
        let shared = try gateway()
        let channel = try channel(on: shared)
        try send(channel, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let before = Self.seriesNames(try written(channel))
        for attempt in 0..<20 {
            let client = try self.channel(on: shared)
            try send(client, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess-\(attempt)\r\nContent-Length: 2\r\n\r\n{}")
            #expect(try written(client).hasPrefix("HTTP/1.1 401"))
        }
        try send(channel, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        let page = try written(channel)
        #expect(Self.seriesNames(page) == before)
        #expect(page.contains("junction_gateway_unauthenticated_requests_total 20"))
    }

    /// A metrics page's series: each sample line up to its value.
    private static func seriesNames(_ page: String) -> Set<String> {
        Set(page.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("HTTP") && $0.contains("junction_") }
            .map { String($0.split(separator: " ").first ?? "") })
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let channel = try channel()
        try send(channel, "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.embeddedEventLoop.run()
        let out = try written(channel)
        let statuses = out.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
        #expect(statuses == ["200", "404", "200"])
    }

    @Test func anIdleKeepAliveConnectionIsClosed() throws {
        let channel = try channel()
        try send(channel, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        _ = try written(channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive)
    }

    @Test func aWebSocketUpgradeOnTheSecondRequestOfAConnectionSwitchesProtocols() throws {
        let channel = try channel()
        try send(channel, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try written(channel).hasPrefix("HTTP/1.1 200"))
        try upgrade(channel, apiKey: Self.key)
        let switched = try written(channel)
        #expect(switched.hasPrefix("HTTP/1.1 101 Switching Protocols"))
        #expect(switched.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
        // Now frames: a text message that is not a request gets an error message, then [DONE].
        try channel.writeInbound(Self.maskedTextFrame("not json"))
        let replies = try written(channel)
        #expect(replies.contains("invalid_request_error") && replies.contains("[DONE]"), "\(replies)")
    }

    @Test func aWrongKeyOnTheWebSocketIsAnErrorMessageAndAPolicyClose() throws {
        let channel = try channel()
        try upgrade(channel, apiKey: "wrong")
        let bytes = try writtenBytes(channel)
        let out = String(decoding: bytes, as: UTF8.self)
        #expect(out.contains("101 Switching Protocols") && out.contains("invalid_api_key"))
        // The close frame carries 1008 (0x03F0).
        #expect(bytes.contains(0x88) && zip(bytes, bytes.dropFirst()).contains { $0 == (0x03, 0xF0) })
    }
}

@Suite struct WebSocketUpgradeTests {
    private func head(_ fields: [(String, String)], method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: "/v1/ws", headers: HTTPHeaders(fields))
    }

    private let good = [
        ("Upgrade", "websocket"), ("Connection", "keep-alive, Upgrade"), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]

    @Test func theRFCsExampleKeyGetsTheRFCsAnswer() {
        #expect(WebSocketUpgrade.decide(head(good)) == .accept("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
    }

    @Test func anOrdinaryRequestIsNoUpgrade() {
        #expect(WebSocketUpgrade.decide(head([("Host", "x")])) == .notRequested)
    }

    @Test func aBrokenUpgradeIsRefusedWithItsReason() {
        #expect(WebSocketUpgrade.decide(head(good, method: .POST)) == .refuse("A WebSocket upgrade must be a GET."))
        let noKey = good.filter { $0.0 != "Sec-WebSocket-Key" }
        guard case .refuse = WebSocketUpgrade.decide(head(noKey)) else { Issue.record("accepted without a key"); return }
        let oldVersion = good.map { $0.0 == "Sec-WebSocket-Version" ? ($0.0, "8") : $0 }
        guard case .refuse = WebSocketUpgrade.decide(head(oldVersion)) else { Issue.record("accepted version 8"); return }
    }
}

@Suite struct FrontRouteTests {
    @Test func routesAndTheBoundedPathLabel() {
        #expect(FrontRoute.decide(method: .POST, uri: "/v1/chat/completions?x=1") == .inference(.chat))
        #expect(FrontRoute.decide(method: .POST, uri: "/v1/embeddings") == .inference(.other))
        #expect(FrontRoute.decide(method: .GET, uri: "/v1/completions") == .notFound)
        #expect(GatewayMetrics.pathLabel("/v1/chat/completions") == "/v1/chat/completions")
        #expect(GatewayMetrics.pathLabel("/v1/aaaaaaaa") == "other")
    }
}
