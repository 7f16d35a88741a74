import Foundation
import ProcessHarness
import NIOCore
import NIOPosix
import Synchronization
import Wire

/// Call round-trip latency over loopback: a Junction `schedule` call against an in-process wire
/// server, the same over mutual TLS (`cluster.tls`), and a baseline of the same frame bounced by
/// a bare NIO length-prefixed echo (no protobuf, no call table), all measured in the same run on
/// the same event loops.
public enum WireRoundTripBenchmark {
    public struct Result: Sendable {
        public let name: String
        public let inFlight: Int
        public let calls: Int
        public let callsPerSecond: Double
        public let latency: LatencySummary
    }

    struct ScheduleService: WireService {
        func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
            guard case .scheduleRequest(let schedule) = request else { throw WireError(.unimplemented, request.name) }
            return .scheduleReply(ScheduleReply(outcome: .assigned(Assignment(
                instanceID: "vllm-7b-0", endpointURL: "http://127.0.0.1:8000", engine: .vllm,
                cachedChunks: UInt32(schedule.prefixHashes.count / 2), policy: "prefix-cache"))))
        }
    }

    public static func run(calls: Int, inFlight: [Int]) async throws -> [Result] {
        var results: [Result] = []
        let configuration = WireConfiguration(role: .scheduler, nodeID: "1", clusterSecret: "bench-secret")
        let server = try await WireServer.bind(host: "127.0.0.1", port: 0, configuration: configuration, service: ScheduleService())
        let pki = try LocalPKI(name: "bench CA")
        var tlsConfiguration = configuration
        tlsConfiguration.tls = try pki.wireTLS(for: .init(role: .scheduler, nodeID: "1"))
        let tlsServer = try await WireServer.bind(host: "127.0.0.1", port: 0, configuration: tlsConfiguration, service: ScheduleService())
        let echo = try await EchoServer.start()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            group.addTask { try await tlsServer.run() }
            let client = try await WireClient.connect(
                host: "127.0.0.1", port: server.port,
                configuration: WireConfiguration(role: .bench, nodeID: "bench", clusterSecret: "bench-secret"))
            var tlsClientConfiguration = WireConfiguration(role: .bench, nodeID: "bench", clusterSecret: "bench-secret")
            tlsClientConfiguration.tls = try pki.wireTLS(for: .init(role: .bench, nodeID: "bench"))
            let tlsClient = try await WireClient.connect(host: "127.0.0.1", port: tlsServer.port, configuration: tlsClientConfiguration)
            let echoClient = try await EchoClient.connect(port: echo.port)
            guard case .scheduleRequest(let schedule) = WireCodecBenchmark.scheduleRequest.body else { return }
            var encoded = ByteBuffer()
            EnvelopeFrameEncoder.encodeFrame(WireCodecBenchmark.scheduleRequest, into: &encoded)
            let frame = encoded
            for concurrency in inFlight {
                results.append(try await measure("junction schedule call", calls: calls, inFlight: concurrency) {
                    _ = try await client.call(.scheduleRequest(schedule))
                })
                results.append(try await measure("junction schedule call, mutual TLS", calls: calls, inFlight: concurrency) {
                    _ = try await tlsClient.call(.scheduleRequest(schedule))
                })
                results.append(try await measure("baseline: bare NIO echo", calls: calls, inFlight: concurrency) {
                    try await echoClient.roundTrip(frame)
                })
            }
            client.close()
            tlsClient.close()
            echoClient.close()
            echo.close()
            server.close()
            tlsServer.close()
            group.cancelAll()
        }
        return results
    }

    static func measure(_ name: String, calls: Int, inFlight: Int, _ call: @escaping @Sendable () async throws -> Void) async throws -> Result {
        // Warm-up, not counted.
        for _ in 0..<min(2000, calls) { try await call() }
        let clock = ContinuousClock()
        let perWorker = calls / inFlight
        let start = clock.now
        let samples = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<inFlight {
                group.addTask {
                    var local: [Double] = []
                    local.reserveCapacity(perWorker)
                    for _ in 0..<perWorker {
                        let t0 = clock.now
                        try await call()
                        local.append((clock.now - t0).nanoseconds)
                    }
                    return local
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        let elapsed = (clock.now - start).nanoseconds / 1e9
        return Result(name: name, inFlight: inFlight, calls: samples.count, callsPerSecond: Double(samples.count) / elapsed, latency: LatencySummary(nanoseconds: samples))
    }
}

/// Baseline server: returns every length-prefixed frame as it came.
final class EchoServer: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    private final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }
        func channelReadComplete(context: ChannelHandlerContext) {
            context.flush()
        }
    }

    static func start() async throws -> EchoServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return EchoServer(channel: channel)
    }

    private init(channel: any Channel) { self.channel = channel }

    func close() { channel.close(promise: nil) }
}

/// Baseline client: sends a frame and completes when as many bytes came back, in order.
final class EchoClient: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<Collector>

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var waiting = CircularBuffer<(Int, EventLoopPromise<Void>)>()
        var received = 0
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += unwrapInboundIn(data).readableBytes
            while let (need, promise) = waiting.first, received >= need {
                received -= need
                waiting.removeFirst()
                promise.succeed(())
            }
        }
    }

    static func connect(port: Int) async throws -> EchoClient {
        let collector = Mutex<NIOLoopBound<Collector>?>(nil)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = Collector()
                    try channel.pipeline.syncOperations.addHandler(handler)
                    collector.withLock { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return EchoClient(channel: channel, handler: collector.withLock { $0! })
    }

    private init(channel: any Channel, handler: NIOLoopBound<Collector>) {
        self.channel = channel
        self.handler = handler
    }

    func roundTrip(_ frame: ByteBuffer) async throws {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let handler = self.handler
        let channel = self.channel
        channel.eventLoop.execute {
            handler.value.waiting.append((frame.readableBytes, promise))
            channel.writeAndFlush(frame, promise: nil)
        }
        try await promise.futureResult.get()
    }

    func close() { channel.close(promise: nil) }
}
