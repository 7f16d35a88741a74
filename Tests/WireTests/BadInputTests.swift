import NIOCore
import Testing
@testable import Wire

/// Every malformed input gets a clear Error frame, the offending connection is closed, and the
/// server goes on serving others. A crashed or hung server fails these through their timeouts.
@Suite struct BadInputTests {
    @Test func zeroLengthFrame() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            try await peer.send([0, 0, 0, 0])
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .badFrame)
            #expect(error.message.contains("zero-length"))
            try await expectServerStillServes(server)
        }
    }

    @Test func frameAboveMaximum() async throws {
        var configuration = testConfiguration(role: .scheduler, nodeID: "1")
        configuration.maxFrameBytes = 1024
        try await withServer(configuration: configuration) { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            // Announces 1025 bytes but sends only the prefix: the server must refuse on the length
            // alone, without waiting for (or allocating) the body.
            try await peer.send([0, 0, 0x04, 0x01])
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .frameTooLarge)
            #expect(error.message.contains("1025"))
            try await expectServerStillServes(server)
        }
    }

    @Test func hugeLengthBeforeHandshake() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.send([0xFF, 0xFF, 0xFF, 0xFF])
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .frameTooLarge)
            try await expectServerStillServes(server)
        }
    }

    @Test func frameCutOffByEOF() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            try await peer.send([0, 0, 0, 10, 0x08, 0x01, 0x02])
            try await peer.shutdownOutput()
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .badFrame)
            #expect(error.message.contains("ended inside a frame"))
            try await expectServerStillServes(server)
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func randomBytes(seed: UInt64) async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            var generator = SplitMix64(seed: seed)
            let bytes = (0..<256).map { _ in UInt8.random(in: 0...255, using: &generator) }
            try await peer.send(bytes)
            let error = try await peer.expectErrorAndClose()
            #expect([ErrorCode.frameTooLarge, .decodeFailed, .badFrame, .protocolViolation, .unknownMessage].contains(error.code))
            try await expectServerStillServes(server)
        }
    }

    @Test func bytesThatAreNotAnEnvelope() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            // Field 1 with wire type 7 does not exist in protobuf.
            try await peer.send([0, 0, 0, 5, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF])
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .decodeFailed)
            try await expectServerStillServes(server)
        }
    }

    @Test func unknownOneofCase() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            // call_id = 1, then field 99 (a body a newer version might add) holding an empty message.
            try await peer.send([0, 0, 0, 5, 0x08, 0x01, 0x9A, 0x06, 0x00])
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .unknownMessage)
            try await expectServerStillServes(server)
        }
    }

    @Test(arguments: [41, 42] as [UInt64])
    func replyToUnknownCallID(callID: UInt64) async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            try await peer.send(Envelope(callID: callID, body: .ack(Ack(index: 3))))
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .unknownCall)
            #expect(error.message.contains("\(callID)"))
            try await expectServerStillServes(server)
        }
    }

    @Test func wrongSecretWithRawPeer() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate(secret: "not-the-secret")
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .unauthenticated)
            try await expectServerStillServes(server)
        }
    }

    @Test func wrongSecretWithRealClient() async throws {
        try await withServer { server in
            let error = await #expect(throws: WireError.self) {
                _ = try await WireClient.connect(host: "127.0.0.1", port: server.port, configuration: testConfiguration(secret: "wrong"))
            }
            #expect(error?.code == .unauthenticated)
            try await expectServerStillServes(server)
        }
    }

    @Test func clientRefusesServerWithOtherSecret() async throws {
        // A server that cannot prove the secret is refused by the client, so an agent never
        // reports to an impostor.
        try await withServer(configuration: testConfiguration(role: .scheduler, nodeID: "1", secret: "server-secret")) { server in
            let error = await #expect(throws: WireError.self) {
                _ = try await WireClient.connect(host: "127.0.0.1", port: server.port, configuration: testConfiguration(secret: "server-secret-2"))
            }
            #expect(error?.code == .unauthenticated)
        }
    }

    @Test func wrongVersion() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate(version: 3)
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .versionMismatch)
            #expect(error.message.contains("version 3"))
            try await expectServerStillServes(server)
        }
    }

    @Test func callBeforeHandshake() async throws {
        try await withServer { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.send(Envelope(callID: 1, body: .statusRequest(StatusRequest())))
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .protocolViolation)
            try await expectServerStillServes(server)
        }
    }

    @Test func peerThatStopsAnsweringIsDropped() async throws {
        var configuration = testConfiguration(role: .scheduler, nodeID: "1")
        configuration.keepaliveInterval = .milliseconds(50)
        configuration.idleTimeout = .milliseconds(300)
        try await withServer(configuration: configuration) { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            // The raw peer never answers the server's pings.
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .timeout)
            #expect(peer.frames.contains { if case .ping? = $0.body { true } else { false } })
        }
    }

    @Test func reusedCallID() async throws {
        try await withServer(service: RecordingService(replyDelay: .milliseconds(500))) { server in
            let peer = try await RawPeer.connect(port: server.port)
            try await peer.authenticate()
            try await peer.send(Envelope(callID: 3, body: .statusRequest(StatusRequest())))
            try await peer.send(Envelope(callID: 3, body: .statusRequest(StatusRequest())))
            let error = try await peer.expectErrorAndClose()
            #expect(error.code == .protocolViolation)
        }
    }
}

/// A small deterministic generator so the random-bytes cases are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
