import NIOCore
import Testing
@testable import Wire

/// A service that answers `status` on the event loop (and counts how often `handle` ran) and
/// leaves the rest to `handle`.
private final class OnLoopService: WireService {
    let handled = Recorder<String>()
    let answeredOnLoop = Recorder<String>()

    func answerOnLoop(_ request: Envelope.Body, from peer: PeerIdentity) -> Result<Envelope.Body, WireError>? {
        switch request {
        case .statusRequest:
            answeredOnLoop.append(request.name)
            return .success(.statusReply(StatusReply(nodeID: 9)))
        case .drainRequest(let drain) where drain.instanceID == "refused":
            answeredOnLoop.append(request.name)
            return .failure(WireError(.invalidArgument, "refused on the loop"))
        case .drainRequest(let drain) where drain.instanceID == "not-a-reply":
            return .success(.ping(Ping()))
        default:
            return nil
        }
    }

    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
        handled.append(request.name)
        return .ack(Ack(message: "by handle"))
    }
}

@Suite struct AnswerOnLoopTests {
    @Test func anAnswerGivenOnTheLoopSkipsHandleAndOthersStillReachIt() async throws {
        let service = OnLoopService()
        try await withServer(service: service) { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            // Many at once on one connection: each gets its own answer, by call id.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask { () async throws -> Void in
                        if index.isMultiple(of: 2) {
                            let reply = try await connection.call(.statusRequest(StatusRequest()))
                            #expect(reply == .statusReply(StatusReply(nodeID: 9)))
                        } else {
                            let reply = try await connection.call(.drainRequest(DrainRequest(instanceID: "x")))
                            #expect(reply == .ack(Ack(message: "by handle")))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let refused = await #expect(throws: WireError.self) {
                _ = try await connection.call(.drainRequest(DrainRequest(instanceID: "refused")))
            }
            #expect(refused?.code == .invalidArgument && refused?.message == "refused on the loop")
            // A service that answers with something that is not a reply gets INTERNAL, and the
            // connection lives on.
            let wrong = await #expect(throws: WireError.self) {
                _ = try await connection.call(.drainRequest(DrainRequest(instanceID: "not-a-reply")))
            }
            #expect(wrong?.code == .internal)
            #expect(try await connection.call(.statusRequest(StatusRequest())) == .statusReply(StatusReply(nodeID: 9)))
        }
        #expect(service.answeredOnLoop.all.count == 102)
        #expect(service.handled.all == Array(repeating: "drain_request", count: 100))
    }
}
