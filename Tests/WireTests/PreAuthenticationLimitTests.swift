import NIOCore
import NIOEmbedded
import Testing
@testable import Wire

/// What an unauthenticated peer can make a listener hold: a few KiB per frame until the
/// handshake completes, the handshake's deadline, and a cap on connections.
@Suite struct PreAuthenticationLimitTests {
    @Test func aFrameLongerThanAFewKiBBeforeTheHandshakeIsRefused() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            // 5000 bytes announced: far below the 4 MiB of an authenticated peer, above the 4 KiB before.
            try await peer.send([0, 0, 0x13, 0x88])
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .frameTooLarge)
            #expect(error.message.contains("before the handshake"))
            try await expectServerStillServes(server)
        }
    }

    @Test func afterTheHandshakeTheFullFrameSizeApplies() async throws {
        try await withServer { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            // A call far above 4 KiB: 20,000 prefix hashes.
            let reply = try await connection.call(
                .scheduleRequest(ScheduleRequest(requestID: "big", model: "m", prefixHashes: Array(0..<20_000))))
            #expect(reply.name != "error")
        }
    }

    /// The decoder on a testing channel: the limit holds for the handshake's frames only.
    @Test func theDecoderLimitsOnlyTheHandshakesFrames() throws {
        func frame(bytes: Int) -> ByteBuffer {
            var buffer = ByteBuffer()
            EnvelopeFrameEncoder.encodeFrame(Envelope(body: .error(ErrorMessage(code: .internal, message: String(repeating: "p", count: bytes)))), into: &buffer)
            return buffer
        }
        // A client reads two frames before it is established: the server's Hello and HelloAck.
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(
            EnvelopeFrameDecoder(maxFrameBytes: 1 << 20, handshakeFrames: 2, handshakeMaxFrameBytes: 4096)))
        for _ in 0..<2 {
            try channel.writeInbound(frame(bytes: 100))
            #expect(try channel.readInbound(as: Envelope.self) != nil)
        }
        try channel.writeInbound(frame(bytes: 10_000))
        #expect(try channel.readInbound(as: Envelope.self) != nil)
        _ = try channel.finish()

        let early = EmbeddedChannel(handler: ByteToMessageHandler(
            EnvelopeFrameDecoder(maxFrameBytes: 1 << 20, handshakeFrames: 2, handshakeMaxFrameBytes: 4096)))
        try early.writeInbound(frame(bytes: 100))
        #expect(throws: FrameError.self) { try early.writeInbound(frame(bytes: 10_000)) }
        _ = try? early.finish()
    }

    @Test func aSilentPeerIsDroppedAtTheHandshakeDeadline() async throws {
        var configuration = testConfiguration(role: .scheduler, nodeID: "1")
        configuration.handshakeTimeout = .milliseconds(200)
        try await withServer(configuration: configuration) { server in
            let peer = try await RawPeer.connect(port: server.port)
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .timeout)
        }
    }

    @Test func connectionsBeyondTheCapAreRefusedBeforeAnyHandshake() async throws {
        var configuration = testConfiguration(role: .scheduler, nodeID: "1")
        configuration.maxConnections = 2
        try await withServer(configuration: configuration) { server in
            let first = try await RawPeer.connect(port: server.port)
            let second = try await RawPeer.connect(port: server.port)
            _ = try await first.waitForFrame { if case .hello? = $0.body { true } else { false } }
            _ = try await second.waitForFrame { if case .hello? = $0.body { true } else { false } }
            let third = try await RawPeer.connect(port: server.port)
            let error = try await third.expectErrorAndClose()
            #expect(error.code == .overloaded)
            #expect(!third.frames.contains { if case .hello? = $0.body { true } else { false } }, "a refused peer gets no Hello")
            #expect(server.refusedConnections == 1)
            // A place freed is a place taken again.
            first.close()
            let deadline = ContinuousClock.now + .seconds(5)
            while server.openConnections > 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            try await expectServerStillServes(server)
            second.close()
        }
    }
}
