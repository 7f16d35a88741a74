import Synchronization
import NIOCore
import NIOPosix
import Testing
@testable import Wire

/// A TCP peer that sends raw bytes and records every byte the server sends back, so tests can send
/// malformed input and check the exact answer.
final class RawPeer: Sendable {
    let channel: any Channel
    private let sink: Sink

    final class Sink: Sendable {
        let state = Mutex<(bytes: [UInt8], closed: Bool)>(([], false))
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let sink: Sink
        init(sink: Sink) { self.sink = sink }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            sink.state.withLock { $0.bytes += bytes }
        }
        func channelInactive(context: ChannelHandlerContext) {
            sink.state.withLock { $0.closed = true }
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? ChannelEvent, event == .inputClosed {
                sink.state.withLock { $0.closed = true }
            }
        }
    }

    static func connect(port: Int) async throws -> RawPeer {
        let sink = Sink()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(sink: sink)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawPeer(channel: channel, sink: sink)
    }

    private init(channel: any Channel, sink: Sink) {
        self.channel = channel
        self.sink = sink
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    func send(_ envelope: Envelope) async throws {
        var buffer = ByteBuffer()
        EnvelopeFrameEncoder.encodeFrame(envelope, into: &buffer)
        try await channel.writeAndFlush(buffer).get()
    }

    /// Half-closes: the server sees EOF but can still answer.
    func shutdownOutput() async throws {
        try await channel.close(mode: .output).get()
    }

    func stopReading() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }

    var isClosed: Bool { sink.state.withLock { $0.closed } }

    /// Every whole frame received so far.
    var frames: [Envelope] {
        var buffer = ByteBuffer(bytes: sink.state.withLock { $0.bytes })
        var frames: [Envelope] = []
        while let frame = try? EnvelopeFrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: 64 << 20) {
            frames.append(frame)
        }
        return frames
    }

    func waitForFrame(timeout: Duration = .seconds(5), where predicate: (Envelope) -> Bool) async throws -> Envelope {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let frame = frames.first(where: predicate) { return frame }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw TimeoutError(timeout: timeout)
    }

    /// Completes the client side of the handshake by hand.
    func authenticate(secret: String = testSecret, version: UInt32 = wireProtocolVersion, role: Role = .bench, nodeID: String = "raw") async throws {
        let serverHello = try await waitForFrame { if case .hello? = $0.body { true } else { false } }
        guard case .hello(let hello)? = serverHello.body else { return }
        let nonce = HandshakeProof.makeNonce()
        let key = Credential.derive(root: .init(data: Array(secret.utf8)), role: role, nodeID: nodeID).key
        let proof = HandshakeProof.clientProof(secret: key, serverNonce: hello.nonce, clientNonce: nonce, role: role, nodeID: nodeID)
        try await send(Envelope(body: .hello(Hello(protocolVersion: version, role: role, nodeID: nodeID, nonce: nonce, proof: proof))))
        if version == wireProtocolVersion && secret == testSecret {
            _ = try await waitForFrame { if case .helloAck? = $0.body { true } else { false } }
        }
    }

    /// Waits for the server's connection-level Error frame and for it to close the connection;
    /// fails the test if either does not come (a crashed or hung server).
    func expectErrorAndClose(timeout: Duration = .seconds(5)) async throws -> ErrorMessage {
        let frame = try await waitForFrame(timeout: timeout) { if case .error? = $0.body, $0.callID == 0 { true } else { false } }
        let deadline = ContinuousClock.now + timeout
        while !isClosed && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(isClosed, "the server should close the connection after the error")
        guard case .error(let error)? = frame.body else { throw TimeoutError(timeout: timeout) }
        return error
    }

    func close() {
        channel.close(promise: nil)
    }
}

/// A server that still answers a real client after a bad peer was thrown out.
func expectServerStillServes(_ server: WireServer) async throws {
    let connection = try await connect(to: server)
    defer { connection.close() }
    let reply = try await connection.call(.statusRequest(StatusRequest()))
    guard case .statusReply(let status) = reply else {
        Issue.record("expected a status reply, got \(reply.name)")
        return
    }
    #expect(status.term == 7)
}
