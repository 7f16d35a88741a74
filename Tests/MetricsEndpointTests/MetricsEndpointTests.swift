import AsyncHTTPClient
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Synchronization
import XCTest

@testable import MetricsEndpoint

final class MetricsRouteTests: XCTestCase {
    func testEveryRequestLineHasOneAnswer() {
        let cases: [(String, String, MetricsRoute)] = [
            ("GET", "/metrics", .metrics),
            ("HEAD", "/metrics", .metrics),
            ("GET", "/metrics?name[]=up", .metrics),
            ("GET", "/healthz", .health),
            ("GET", "/health", .health),
            ("GET", "/readyz", .ready),
            ("GET", "/ready", .ready),
            ("POST", "/metrics", .methodNotAllowed),
            ("DELETE", "/readyz", .methodNotAllowed),
            ("GET", "/", .notFound),
            ("GET", "/metrics/", .notFound),
            ("POST", "/nothing", .notFound),
            ("GET", "", .notFound),
        ]
        for (method, uri, expected) in cases {
            XCTAssertEqual(MetricsRoute(method: method, uri: uri), expected, "\(method) \(uri)")
        }
    }
}

/// The handler alone, on a testing channel: what each request line is answered with.
final class MetricsHTTPHandlerTests: XCTestCase {
    private func answer(_ method: HTTPMethod, _ uri: String, ready: Bool = true, keepAlive: Bool = true) async throws
        -> (head: HTTPResponseHead, body: String)
    {
        let responder = MetricsResponder(metrics: { "# TYPE up gauge\nup 1\n" }, readiness: { (ready, "no leader known") })
        let channel = await NIOAsyncTestingChannel(handler: MetricsHTTPHandler(responder: responder))
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        if !keepAlive { head.headers.add(name: "Connection", value: "close") }
        try await channel.writeInbound(HTTPServerRequestPart.head(head))
        try await channel.writeInbound(HTTPServerRequestPart.end(nil))
        let first = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self)
        guard case .head(let responseHead) = first else {
            struct NoHead: Error {}
            XCTFail("the answer began with \(first), not a head")
            throw NoHead()
        }
        var body = ""
        while true {
            let part = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self)
            if case .body(.byteBuffer(let buffer)) = part { body += String(buffer: buffer) }
            if case .end = part { break }
        }
        _ = try? await channel.finish()
        return (responseHead, body)
    }

    func testMetricsAreServedInThePrometheusTextFormat() async throws {
        let (head, body) = try await answer(.GET, "/metrics")
        XCTAssertEqual(head.status, .ok)
        XCTAssertEqual(head.headers["Content-Type"].first, MetricsRoute.expositionContentType)
        XCTAssertEqual(head.headers["Content-Length"].first, String(body.utf8.count))
        XCTAssertEqual(body, "# TYPE up gauge\nup 1\n")
    }

    func testHeadHasTheHeadersAndNoBody() async throws {
        let (head, body) = try await answer(.HEAD, "/metrics")
        XCTAssertEqual(head.status, .ok)
        XCTAssertEqual(body, "")
    }

    func testReadinessSaysWhyNot() async throws {
        let ready = try await answer(.GET, "/readyz")
        XCTAssertEqual(ready.head.status, .ok)
        let notReady = try await answer(.GET, "/readyz", ready: false)
        XCTAssertEqual(notReady.head.status, .serviceUnavailable)
        XCTAssertEqual(notReady.body, "not ready: no leader known\n")
        let health = try await answer(.GET, "/healthz", ready: false)
        XCTAssertEqual(health.head.status, .ok, "liveness does not depend on readiness")
    }

    func testUnknownPathsAndMethodsAreRefusedClearly() async throws {
        let missing = try await answer(.GET, "/secrets")
        XCTAssertEqual(missing.head.status, .notFound)
        XCTAssertTrue(missing.body.contains("/metrics"))
        let posted = try await answer(.POST, "/metrics")
        XCTAssertEqual(posted.head.status, .methodNotAllowed)
        XCTAssertEqual(posted.head.headers["Allow"].first, "GET, HEAD")
    }
}

/// The server for real, on 127.0.0.1, with a real HTTP client and a raw socket for bad input.
final class MetricsServerTests: XCTestCase {
    func testServesScrapesAndSurvivesMalformedRequests() async throws {
        let counter = ScrapeCounter()
        let server = try await MetricsServer.bind(
            host: "127.0.0.1", port: 0,
            responder: MetricsResponder(metrics: { "scrapes_total \(counter.next())\n" }, readiness: { (false, "starting") }))
        try await withThrowingTaskGroup { group in
            group.addTask { await server.run() }
            let base = "http://127.0.0.1:\(server.port)"
            for expected in 1...3 {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/metrics"), timeout: .seconds(5))
                XCTAssertEqual(response.status, .ok)
                let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                XCTAssertEqual(body, "scrapes_total \(expected)\n", "each scrape builds the page anew")
            }
            let ready = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/readyz"), timeout: .seconds(5))
            XCTAssertEqual(ready.status, .serviceUnavailable)

            // Garbage is answered 400 and the connection closed; the server goes on serving.
            let garbage = try await RawHTTP.exchange(port: server.port, "NOT HTTP AT ALL\r\n\r\n")
            XCTAssertTrue(garbage.hasPrefix("HTTP/1.1 400"), garbage)
            let after = try await HTTPClient.shared.execute(HTTPClientRequest(url: base + "/healthz"), timeout: .seconds(5))
            XCTAssertEqual(after.status, .ok)
            server.close()
            try await group.waitForAll()
        }
    }
}

final class ScrapeCounter: Sendable {
    private let count = Mutex(0)
    func next() -> Int { count.withLock { $0 += 1; return $0 } }
}

/// Sends raw bytes and reads until the server closes; fails if it has not within 5 s.
enum RawHTTP {
    struct StillOpen: Error {}

    static func exchange(port: Int, _ request: String) async throws -> String {
        try await withThrowingTaskGroup { group in
            group.addTask { try await readToClose(port: port, request) }
            group.addTask {
                try await Task.sleep(for: .seconds(5))
                throw StillOpen()
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    private static func readToClose(port: Int, _ request: String) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var text = ""
            for try await chunk in inbound { text += String(buffer: chunk) }
            return text
        }
    }
}
