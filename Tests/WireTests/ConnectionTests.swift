import Synchronization
import NIOCore
import Testing
@testable import Wire

@Suite struct ConnectionTests {
    @Test func unaryCallRoundTrip() async throws {
        try await withServer { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            let reply = try await connection.call(.scheduleRequest(Samples.schedule))
            guard case .scheduleReply(let schedule) = reply, case .assigned(let assignment)? = schedule.outcome else {
                Issue.record("unexpected reply \(reply.name)")
                return
            }
            #expect(assignment.instanceID == "i-qwen-7b")
            #expect(assignment.cachedChunks == 64)
            #expect(assignment.endpointURL.hasSuffix("/req-1"))
        }
    }

    @Test func handshakeIdentifiesBothSides() async throws {
        try await withServer { server in
            let connection = try await connect(to: server, configuration: testConfiguration(role: .gateway, nodeID: "gw-1"))
            defer { connection.close() }
            let peer = try await connection.handshakeCompleted()
            #expect(peer.role == .scheduler && peer.nodeID == "1")
        }
    }

    @Test func remoteErrorsAndNotLeaderReachTheCaller() async throws {
        try await withServer { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            let error = await #expect(throws: WireError.self) {
                _ = try await connection.call(.scheduleRequest(ScheduleRequest(model: "unknown")))
            }
            #expect(error?.code == .notFound)
            let unimplemented = await #expect(throws: WireError.self) {
                _ = try await connection.call(.registerInstance(RegisterInstance()))
            }
            #expect(unimplemented?.code == .unimplemented)
            let reply = try await connection.call(.drainRequest(DrainRequest(instanceID: "a")))
            #expect(reply == .notLeader(NotLeader(leaderID: 2, leaderAddress: "127.0.0.1:7002", term: 7)))
            // The connection survives call-level errors.
            _ = try await connection.call(.statusRequest(StatusRequest()))
        }
    }

    @Test func manyConcurrentCallsOnOneConnection() async throws {
        try await withServer(service: RecordingService(replyDelay: .milliseconds(20))) { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<500 {
                    group.addTask {
                        let reply = try await connection.call(.scheduleRequest(ScheduleRequest(requestID: "r\(i)", model: "m\(i % 7)")))
                        guard case .scheduleReply(let s) = reply, case .assigned(let a)? = s.outcome else {
                            throw WireError(.internal, "bad reply")
                        }
                        // Replies must reach the call that asked, not a neighbour.
                        #expect(a.endpointURL.hasSuffix("/r\(i)"))
                        #expect(a.instanceID == "i-m\(i % 7)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test func serverStreamDeliversItemsThenEnds() async throws {
        try await withServer { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            let stream = try await connection.openStream(.subscribeInstances(SubscribeInstances(knownVersion: 10)))
            var versions: [UInt64] = []
            for try await item in stream.inbound {
                if case .instanceTable(let table) = item { versions.append(table.version) }
            }
            #expect(versions == [11, 12, 13])
        }
    }

    @Test func clientStreamDeliversItemsInOrder() async throws {
        let service = RecordingService()
        try await withServer(service: service) { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            let stream = try await connection.openStream(.openReportStream(OpenReportStream(instanceID: "engine-a")))
            for sequence in 1...50 as ClosedRange<UInt64> {
                try await stream.send(.loadReport(LoadReport(instanceID: "engine-a", sequence: sequence)))
            }
            stream.finish()
            // The server's handler returns once our side ended, which ends the stream with End.
            for try await _ in stream.inbound {}
            let sequences = service.received.all.compactMap { body -> UInt64? in
                if case .loadReport(let report) = body { report.sequence } else { nil }
            }
            #expect(sequences == Array(1...50))
        }
    }

    @Test func cancellingAStreamStopsTheServerHandler() async throws {
        try await withServer { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            let stream = try await connection.openStream(.subscribeCapacity(SubscribeCapacity(model: "m")))
            stream.cancel(reason: "not interested")
            await #expect(throws: WireError.self) {
                for try await _ in stream.inbound {}
            }
            // Still usable afterwards.
            _ = try await connection.call(.statusRequest(StatusRequest()))
        }
    }

    @Test func oneWayMessagesArriveInOrder() async throws {
        let service = RecordingService()
        try await withServer(service: service) { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            for term in 1...100 as ClosedRange<UInt64> {
                try await connection.sendOneWay(.raftMessage(RaftMessage(from: 2, to: 1, term: term, kind: .timeoutNow(TimeoutNow()))))
            }
            let arrived = await service.received.wait { $0.count == 100 }
            #expect(arrived)
            let terms = service.received.all.compactMap { body -> UInt64? in
                if case .raftMessage(let message) = body { message.term } else { nil }
            }
            #expect(terms == Array(1...100))
        }
    }

    @Test func callTimesOutAndTheLateReplyIsDropped() async throws {
        try await withServer(service: RecordingService(replyDelay: .milliseconds(300))) { server in
            let connection = try await connect(to: server)
            defer { connection.close() }
            let error = await #expect(throws: WireError.self) {
                _ = try await connection.call(.statusRequest(StatusRequest()), timeout: .milliseconds(50))
            }
            #expect(error?.code == .timeout)
            // The reply that arrives later must not break the connection.
            try await Task.sleep(for: .milliseconds(400))
            #expect(connection.isActive)
            _ = try await connection.call(.statusRequest(StatusRequest()))
        }
    }

    @Test func pendingCallsFailWhenTheServerGoesAway() async throws {
        let service = RecordingService(replyDelay: .seconds(10))
        let server = try await WireServer.bind(host: "127.0.0.1", port: 0, configuration: testConfiguration(role: .scheduler, nodeID: "1"), service: service)
        let runner = Task { try await server.run() }
        let connection = try await connect(to: server)
        let pending = Task { try await connection.call(.statusRequest(StatusRequest()), timeout: .seconds(30)) }
        _ = await service.received.wait { !$0.isEmpty }
        runner.cancel()
        let error = await #expect(throws: WireError.self) { _ = try await pending.value }
        #expect(error?.code == .unavailable)
        _ = await runner.result
    }

    @Test func keepaliveHoldsAnIdleConnectionOpen() async throws {
        // Idle for three idle timeouts: without pings the connection would have been closed.
        // The idle timeout is fifteen ping intervals, so a loaded machine delaying a ping or two
        // does not close it (and a stall of the checking loop itself is not counted as silence).
        var configuration = testConfiguration(role: .scheduler, nodeID: "1")
        configuration.keepaliveInterval = .milliseconds(100)
        configuration.idleTimeout = .milliseconds(1_500)
        var clientConfiguration = testConfiguration()
        clientConfiguration.keepaliveInterval = .milliseconds(100)
        clientConfiguration.idleTimeout = .milliseconds(1_500)
        let client = clientConfiguration
        try await withServer(configuration: configuration) { server in
            let connection = try await connect(to: server, configuration: client)
            defer { connection.close() }
            try await Task.sleep(for: .milliseconds(4_500))
            #expect(connection.isActive)
            _ = try await connection.call(.statusRequest(StatusRequest()))
        }
    }

    @Test func slowReaderHoldsBackTheSender() async throws {
        // A service that streams large tables as fast as it is allowed to.
        final class FloodService: WireService {
            let sent = Mutex(0)
            func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
                .statusReply(StatusReply(term: 7))
            }
            func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws {
                let table = InstanceTable(version: 1, instances: (0..<200).map { Instance(id: "instance-\($0)", endpointURL: "http://127.0.0.1:8000/\($0)", model: "m") })
                while true {
                    try await stream.send(.instanceTable(table))
                    sent.withLock { $0 += 1 }
                }
            }
        }
        let service = FloodService()
        try await withServer(service: service) { server in
            let peer = try await RawPeer.connect(port: server.port)
            defer { peer.close() }
            try await peer.authenticate()
            try await peer.stopReading()
            try await peer.send(Envelope(callID: 1, body: .subscribeInstances(SubscribeInstances())))
            // Kernel socket buffers absorb some tables, then the sender must stall, not buffer
            // on: the count settles (unchanged for a second) well below what unbounded sending
            // reaches in that time. Polled, so a slow machine only makes it take longer.
            var settled: Int?
            var last = -1
            var unchangedSince = ContinuousClock.now
            let giveUp = ContinuousClock.now + .seconds(30)
            while settled == nil, ContinuousClock.now < giveUp {
                try await Task.sleep(for: .milliseconds(100))
                let now = service.sent.withLock { $0 }
                if now != last {
                    last = now
                    unchangedSince = .now
                } else if ContinuousClock.now - unchangedSince >= .seconds(1) {
                    settled = now
                }
            }
            let stalled = try #require(settled, "the sender kept going while nobody read: \(last) tables")
            #expect(stalled > 0)
            #expect(stalled < 5000)
            try await expectServerStillServes(server)
        }
    }

    @Test func reconnectingClientSurvivesAServerRestart() async throws {
        let configuration = testConfiguration(role: .scheduler, nodeID: "1")
        let first = try await WireServer.bind(host: "127.0.0.1", port: 0, configuration: configuration, service: RecordingService())
        let port = first.port
        let firstRunner = Task { try await first.run() }
        let client = ReconnectingWireClient(
            target: .init(host: "127.0.0.1", port: port), configuration: testConfiguration(),
            backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(200)))
        let clientRunner = Task { await client.run() }
        defer { clientRunner.cancel() }
        _ = try await client.call(.statusRequest(StatusRequest()))
        firstRunner.cancel()
        _ = await firstRunner.result
        // The client learns of the close from its socket, some time after the server stops: a
        // call sent before that goes down the dead connection and times out instead.
        let noticed = ContinuousClock.now + .seconds(10)
        while await client.isConnected, ContinuousClock.now < noticed { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await !client.isConnected)
        // While the server is down calls fail after their wait, with UNAVAILABLE.
        let error = await #expect(throws: WireError.self) {
            _ = try await client.call(.statusRequest(StatusRequest()), timeout: .milliseconds(100))
        }
        #expect(error?.code == .unavailable)
        let second = try await WireServer.bind(host: "127.0.0.1", port: port, configuration: configuration, service: RecordingService())
        let secondRunner = Task { try await second.run() }
        defer { secondRunner.cancel() }
        _ = try await client.call(.statusRequest(StatusRequest()), timeout: .seconds(3))
        #expect(await client.connectCount == 2)
    }

    @Test func retargetMovesTheClientToAnotherServer() async throws {
        try await withServer { a in
            try await withServer { b in
                let client = ReconnectingWireClient(target: .init(host: "127.0.0.1", port: a.port), configuration: testConfiguration())
                let runner = Task { await client.run() }
                defer { runner.cancel() }
                let first = try await client.connection(within: .seconds(3))
                await client.retarget(.init(host: "127.0.0.1", port: b.port))
                let second = try await client.connection(within: .seconds(3))
                #expect(first !== second)
                #expect(second.channel.remoteAddress?.port == b.port)
            }
        }
    }
}
