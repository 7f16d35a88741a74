import CJunctionProto
import NIOCore
import Testing
@testable import Wire

@Suite struct MessageCodingTests {
    @Test func everyBodyRoundTrips() throws {
        for (i, body) in Samples.bodies.enumerated() {
            let envelope = Envelope(callID: UInt64(i * 2 + 1), body: body)
            let bytes = envelope.serializedBytes()
            let decoded = try Envelope(serializedBytes: bytes)
            #expect(decoded == envelope, "\(body.name) changed in a round trip")
        }
    }

    @Test func everyBodyKindIsCovered() {
        // Guards the samples list: a new body in the proto must get a sample. The Envelope's
        // descriptor counts call_id plus one field per body.
        let names = Set(Samples.bodies.map(\.name))
        #expect(names.count == Int(junction__v1__envelope__descriptor.n_fields) - 1)
    }

    @Test func replicatedStateRoundTrips() throws {
        let snapshot = SchedulerSnapshot(
            instances: [Samples.instance], policy: Samples.policy,
            affinity: [AffinityRecord(instanceID: "engine-a", hashes: [1, 2, 3], atUnixMs: 9)], registryVersion: 12)
        #expect(try SchedulerSnapshot(serializedBytes: snapshot.serializedBytes()) == snapshot)
        let commands: [SchedulerCommand] = [
            SchedulerCommand(command: .upsertInstance(Samples.instance)),
            SchedulerCommand(command: .setInstanceState(InstanceStateChange(instanceID: "a", state: .down, reason: "missed heartbeats", atUnixMs: 5))),
            SchedulerCommand(command: .removeInstance("a")),
            SchedulerCommand(command: .setPolicy(Samples.policy)),
            SchedulerCommand(command: .affinity(AffinityBatch(records: [AffinityRecord(instanceID: "a", hashes: [7])]))),
        ]
        for command in commands {
            #expect(try SchedulerCommand(serializedBytes: command.serializedBytes()) == command)
        }
    }

    @Test func knownBytes() throws {
        // Hand-computed protobuf: field 1 varint 5, then field 13 (ping) length 2 holding field 1 varint 9.
        let envelope = Envelope(callID: 5, body: .ping(Ping(nonce: 9)))
        #expect(envelope.serializedBytes() == [0x08, 0x05, 0x6A, 0x02, 0x08, 0x09])
        #expect(try Envelope(serializedBytes: [0x08, 0x05, 0x6A, 0x02, 0x08, 0x09]) == envelope)
        // Packed repeated uint64 (proto3 default).
        #expect(ScheduleRequest(prefixHashes: [1, 300]).serializedBytes() == [0x1A, 0x03, 0x01, 0xAC, 0x02])
    }

    @Test func defaultsEncodeToNothing() throws {
        #expect(LoadReport().serializedBytes().isEmpty)
        #expect(try LoadReport(serializedBytes: []) == LoadReport())
        #expect(Envelope(body: .end(End())).serializedBytes() == [0x82, 0x01, 0x00])
    }

    @Test func malformedBytesThrow() {
        #expect(throws: MessageDecodingError.self) { try Envelope(serializedBytes: [0x0F]) }
        #expect(throws: MessageDecodingError.self) { try Envelope(serializedBytes: [0x6A, 0x05, 0x08]) }  // length past the end
        #expect(throws: MessageDecodingError.self) { try Hello(serializedBytes: [0x1A, 0x02, 0xC3, 0x28]) }  // invalid UTF-8 string
    }

    @Test func unknownFieldsAndEnumValuesAreTolerated() throws {
        // Field 99 is unknown: the message still decodes, with no body.
        let envelope = try Envelope(serializedBytes: [0x08, 0x01, 0x9A, 0x06, 0x00])
        #expect(envelope.callID == 1 && envelope.body == nil)
        // An EngineKind value from a newer peer decodes as unspecified.
        #expect(try Instance(serializedBytes: [0x20, 0x63]).engine == .unspecified)
    }

    @Test func serializeIntoBufferMatchesBytes() {
        var buffer = ByteBuffer()
        let count = Samples.schedule.serialize(into: &buffer)
        #expect(count == buffer.readableBytes)
        #expect(buffer.readBytes(length: count) == Samples.schedule.serializedBytes())
    }
}

@Suite struct FrameCodecTests {
    @Test func framesAreLengthPrefixed() throws {
        var buffer = ByteBuffer()
        EnvelopeFrameEncoder.encodeFrame(Envelope(callID: 5, body: .ping(Ping(nonce: 9))), into: &buffer)
        #expect(buffer.readableBytesView.elementsEqual([0, 0, 0, 6, 0x08, 0x05, 0x6A, 0x02, 0x08, 0x09]))
    }

    @Test func partialFramesWaitForMoreBytes() throws {
        var whole = ByteBuffer()
        EnvelopeFrameEncoder.encodeFrame(Envelope(callID: 1, body: .scheduleRequest(Samples.schedule)), into: &whole)
        let bytes = Array(whole.readableBytesView)
        for cut in [0, 1, 3, 4, 5, bytes.count - 1] {
            var partial = ByteBuffer(bytes: bytes[..<cut])
            #expect(try EnvelopeFrameDecoder.decodeFrame(from: &partial, maxFrameBytes: 1 << 20) == nil)
            #expect(partial.readableBytes == cut, "a partial frame must not be consumed")
        }
        var complete = ByteBuffer(bytes: bytes + [0, 0])
        let frame = try EnvelopeFrameDecoder.decodeFrame(from: &complete, maxFrameBytes: 1 << 20)
        #expect(frame?.body == .scheduleRequest(Samples.schedule))
        #expect(complete.readableBytes == 2)
    }

    @Test func refusals() {
        var zero = ByteBuffer(bytes: [0, 0, 0, 0])
        #expect(throws: FrameError(code: .badFrame, message: "zero-length frame: every frame carries one Envelope")) {
            try EnvelopeFrameDecoder.decodeFrame(from: &zero, maxFrameBytes: 100)
        }
        var large = ByteBuffer(bytes: [0, 0, 0, 101])
        #expect { try EnvelopeFrameDecoder.decodeFrame(from: &large, maxFrameBytes: 100) } throws: { ($0 as? FrameError)?.code == .frameTooLarge }
        var garbage = ByteBuffer(bytes: [0, 0, 0, 1, 0x0F])
        #expect { try EnvelopeFrameDecoder.decodeFrame(from: &garbage, maxFrameBytes: 100) } throws: { ($0 as? FrameError)?.code == .decodeFailed }
    }
}

@Suite struct HandshakeAndBackoffTests {
    @Test func proofsVerifyOnlyWithTheSameSecretAndTranscript() {
        let secret = WireConfiguration(role: .gateway, nodeID: "g", clusterSecret: "s1").credential.key
        let other = WireConfiguration(role: .gateway, nodeID: "g", clusterSecret: "s2").credential.key
        let serverNonce = HandshakeProof.makeNonce(), clientNonce = HandshakeProof.makeNonce()
        #expect(serverNonce != clientNonce && serverNonce.count == 32)
        let proof = HandshakeProof.clientProof(secret: secret, serverNonce: serverNonce, clientNonce: clientNonce, role: .gateway, nodeID: "g")
        #expect(HandshakeProof.verifyClientProof(proof, secret: secret, serverNonce: serverNonce, clientNonce: clientNonce, role: .gateway, nodeID: "g"))
        #expect(!HandshakeProof.verifyClientProof(proof, secret: other, serverNonce: serverNonce, clientNonce: clientNonce, role: .gateway, nodeID: "g"))
        #expect(!HandshakeProof.verifyClientProof(proof, secret: secret, serverNonce: clientNonce, clientNonce: serverNonce, role: .gateway, nodeID: "g"))
        #expect(!HandshakeProof.verifyClientProof(proof, secret: secret, serverNonce: serverNonce, clientNonce: clientNonce, role: .scheduler, nodeID: "g"))
        #expect(!HandshakeProof.verifyClientProof(proof, secret: secret, serverNonce: serverNonce, clientNonce: clientNonce, role: .gateway, nodeID: "h"))
        let serverProof = HandshakeProof.serverProof(secret: secret, clientNonce: clientNonce, serverNonce: serverNonce)
        #expect(HandshakeProof.verifyServerProof(serverProof, secret: secret, clientNonce: clientNonce, serverNonce: serverNonce))
        #expect(!HandshakeProof.verifyServerProof(proof, secret: secret, clientNonce: clientNonce, serverNonce: serverNonce))
    }

    @Test func backoffGrowsCapsAndResets() {
        var backoff = Backoff(base: .milliseconds(50), cap: .seconds(1))
        #expect(backoff.next(unit: 1) == .milliseconds(50))
        #expect(backoff.next(unit: 1) == .milliseconds(100))
        #expect(backoff.next(unit: 0.5) == .milliseconds(100))
        for _ in 0..<40 { _ = backoff.next(unit: 1) }
        #expect(backoff.next(unit: 1) == .seconds(1))
        #expect(backoff.next(unit: 0) == .zero)
        backoff.reset()
        #expect(backoff.currentCeiling == .milliseconds(50))
    }
}
