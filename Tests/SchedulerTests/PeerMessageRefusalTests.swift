import AsyncHTTPClient
import PromText
import Raft
import Testing
import Wire

@testable import Scheduler

/// A peer's Raft message is checked before the core sees it: what would crash or corrupt a node
/// is refused with a reason (`RaftMessageCheck`), and over the wire the connection is closed,
/// the refusal counted, and the node goes on leading in the same term.
@Suite struct RaftMessageCheckTests {
    private func message(from: NodeID = 2, to: NodeID = 1, term: Term = 5, _ body: Raft.Message.Body) -> Raft.Message {
        Raft.Message(from: from, to: to, term: term, body: body)
    }

    private func append(prev: LogIndex, prevTerm: Term, _ entries: [(LogIndex, Term)], commit: LogIndex = 0) -> Raft.Message.Body {
        .append(Raft.AppendRequest(prevLogIndex: prev, prevLogTerm: prevTerm, entries: entries.map { Raft.Entry(index: $0.0, term: $0.1) }, leaderCommit: commit))
    }

    @Test func honestMessagesPass() {
        let honest: [Raft.Message.Body] = [
            .heartbeat(Raft.Heartbeat(commit: 10, readRound: 3)),
            .voteRequest(Raft.VoteRequest(preVote: false, lastLogIndex: 10, lastLogTerm: 5, leadershipTransfer: false)),
            append(prev: 0, prevTerm: 0, [(1, 1), (2, 1), (3, 4), (4, 5)], commit: 2),
            append(prev: 7, prevTerm: 3, []),
            .appendResponse(Raft.AppendResponse(success: false, matchIndex: 0, rejectIndex: 8, hintIndex: 6, hintTerm: 2)),
            .snapshotChunk(Raft.SnapshotChunk(metadata: Raft.SnapshotMetadata(index: 9, term: 4, membership: Raft.Membership(voters: [1, 2, 3])),
                                         offset: 100, totalSize: 150, data: Array(repeating: 0, count: 50), done: true)),
            .snapshotResponse(Raft.SnapshotResponse(snapshotIndex: 9, nextOffset: 150, accepted: true, installed: true)),
            .timeoutNow,
        ]
        for body in honest { #expect(RaftMessageCheck.problem(message(body), sender: 2) == nil, "\(body)") }
    }

    @Test func termsAndIndexesThatCouldOverflowAreRefused() {
        #expect(RaftMessageCheck.problem(message(term: .max, .heartbeat(Raft.Heartbeat(commit: 0, readRound: 0))), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(term: RaftMessageCheck.maxTerm + 1, .timeoutNow), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(.heartbeat(Raft.Heartbeat(commit: .max, readRound: 0))), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(append(prev: .max - 1, prevTerm: 1, [(.max, 5)])), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(.appendResponse(Raft.AppendResponse(success: true, matchIndex: .max))), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(append(prev: 0, prevTerm: 0, [], commit: .max)), sender: 2) != nil)
    }

    @Test func entriesMustContinueTheLogInOrderWithTermsThatNeverFall() {
        let bad: [Raft.Message.Body] = [
            append(prev: 3, prevTerm: 2, [(5, 2)]),  // a gap
            append(prev: 3, prevTerm: 2, [(4, 2), (4, 2)]),  // a repeat
            append(prev: 3, prevTerm: 2, [(4, 3), (5, 2)]),  // a term that falls
            append(prev: 3, prevTerm: 4, [(4, 3)]),  // below the previous entry's term
            append(prev: 3, prevTerm: 2, [(4, 6)]),  // above the leader's term
            append(prev: 3, prevTerm: 6, []),  // a previous term above the leader's
            append(prev: 0, prevTerm: 1, []),  // index 0 has term 0
            append(prev: 3, prevTerm: 2, [(4, 0)]),  // term 0
        ]
        for body in bad { #expect(RaftMessageCheck.problem(message(body), sender: 2) != nil, "\(body)") }
    }

    @Test func aCandidateCannotHoldALogNewerThanItsTerm() {
        let vote = Raft.VoteRequest(preVote: false, lastLogIndex: 3, lastLogTerm: 6, leadershipTransfer: false)
        #expect(RaftMessageCheck.problem(message(.voteRequest(vote)), sender: 2) != nil)
    }

    @Test func snapshotChunksStayInsideTheirSnapshot() {
        func chunk(index: LogIndex = 9, term: Term = 4, offset: Int, total: Int, bytes: Int, done: Bool = false) -> Raft.Message {
            message(.snapshotChunk(Raft.SnapshotChunk(
                metadata: Raft.SnapshotMetadata(index: index, term: term, membership: Raft.Membership(voters: [1])), offset: offset, totalSize: total,
                data: Array(repeating: 0, count: bytes), done: done)))
        }
        #expect(RaftMessageCheck.problem(chunk(offset: 0, total: 10, bytes: 10, done: true), sender: 2) == nil)
        #expect(RaftMessageCheck.problem(chunk(offset: 5, total: 10, bytes: 10), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(chunk(offset: -1, total: 10, bytes: 1), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(chunk(offset: 0, total: 10, bytes: 5, done: true), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(chunk(offset: 0, total: .max, bytes: 5), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(chunk(term: 6, offset: 0, total: 1, bytes: 1), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(chunk(index: 0, offset: 0, total: 1, bytes: 1), sender: 2) != nil)
    }

    @Test func theSenderIsTheNodeTheConnectionAuthenticated() {
        let heartbeat = Raft.Message.Body.heartbeat(Raft.Heartbeat(commit: 0, readRound: 0))
        #expect(RaftMessageCheck.problem(message(from: 3, heartbeat), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(from: 2, to: 2, heartbeat), sender: 2) != nil)
        #expect(RaftMessageCheck.problem(message(from: 0, heartbeat), sender: 0) != nil)
        // Addressed to another node: stale, not hostile; the core drops it.
        #expect(RaftMessageCheck.problem(message(from: 2, to: 7, heartbeat), sender: 2) == nil)
    }
}

@Suite(.timeLimit(.minutes(1))) struct PeerMessageRefusalTests {
    /// Sends `message` as `role` named `nodeID` and waits for the node to close the connection.
    private func sendAndExpectClose(_ node: SingleNode, role: Wire.Role, nodeID: String, _ message: Wire.RaftMessage) async throws {
        let connection = try await WireClient.connect(
            host: "127.0.0.1", port: node.port, configuration: WireConfiguration(role: role, nodeID: nodeID, clusterSecret: node.secret))
        try await connection.sendOneWay(.raftMessage(message))
        try await connection.closeFuture.get()
    }

    private func status(_ node: SingleNode) async throws -> StatusReply {
        let connection = try await node.connect(role: .operator)
        defer { connection.close() }
        guard case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())) else {
            throw WireError(.internal, "no status")
        }
        return status
    }

    @Test func badRaftMessagesCloseTheirConnectionAndLeaveTheLeaderAsItWas() async throws {
        try await SingleNode.with(withMetrics: true) { node in
            let before = try await status(node)
            let huge = Wire.RaftMessage(from: 2, to: 1, term: .max, kind: .heartbeat(Wire.Heartbeat(commit: 0, readRound: 0)))
            try await sendAndExpectClose(node, role: .scheduler, nodeID: "2", huge)
            let outOfOrder = Wire.RaftMessage(
                from: 2, to: 1, term: before.term + 1,
                kind: .appendRequest(Wire.AppendRequest(
                    prevLogIndex: 1, prevLogTerm: 1, entries: [Wire.LogEntry(index: 5, term: 1, type: .command, data: [])], leaderCommit: 0)))
            try await sendAndExpectClose(node, role: .scheduler, nodeID: "2", outOfOrder)
            // A peer naming another node as the sender, and a gateway speaking Raft.
            let posing = Wire.RaftMessage(from: 3, to: 1, term: before.term + 1, kind: .timeoutNow(Wire.TimeoutNow()))
            try await sendAndExpectClose(node, role: .scheduler, nodeID: "2", posing)
            try await sendAndExpectClose(node, role: .gateway, nodeID: "gw", posing)

            let after = try await status(node)
            #expect(after.term == before.term && after.leaderID == 1)
            let port = try #require(node.metricsPort)
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
            let page = try PromTextParser.parse(String(buffer: try await response.body.collect(upTo: 8 << 20)))
            func refusals(_ reason: String) -> Double? {
                page.samples(named: "junction_scheduler_wire_refusals_total").first { $0.label("reason") == reason }?.value
            }
            #expect(refusals("invalid_message") == 2)
            #expect(refusals("wrong_sender") == 1)
            #expect(refusals("not_permitted") == 1)
        }
    }
}

/// A process holding only its own credential, against a live node: what its role may do works,
/// the rest is refused with PERMISSION_DENIED, and it cannot pass for another role or id.
@Suite(.timeLimit(.minutes(1))) struct RoleRefusalTests {
    private func connect(_ node: SingleNode, _ credential: Credential) async throws -> WireConnection {
        try await WireClient.connect(host: "127.0.0.1", port: node.port, configuration: WireConfiguration(credential: credential))
    }

    private func credential(_ node: SingleNode, _ role: Wire.Role, _ id: String) -> Credential {
        Credential.derive(root: .init(data: Array(node.secret.utf8)), role: role, nodeID: id)
    }

    private func expectDenied(_ call: Envelope.Body, on connection: WireConnection) async throws {
        do {
            let reply = try await connection.call(call)
            Issue.record("\(call.name) was answered \(reply.name)")
        } catch let error as WireError {
            #expect(error.code == .permissionDenied, "\(call.name): \(error)")
        }
    }

    @Test func anAgentsCredentialServesItsInstanceAndNothingElse() async throws {
        try await SingleNode.with(withMetrics: true) { node in
            let agent = try await connect(node, credential(node, .agent, "e1"))
            defer { agent.close() }
            try await register("e1", on: agent)
            func instance(_ id: String) -> Instance { Instance(id: id, endpointURL: "http://127.0.0.1:9/\(id)", model: "m", engine: .vllm) }
            try await expectDenied(.registerInstance(RegisterInstance(instance: instance("e2"))), on: agent)
            try await expectDenied(.setPolicyRequest(SetPolicyRequest(policy: PolicyConfig(name: "round-robin"))), on: agent)
            try await expectDenied(.drainRequest(DrainRequest(instanceID: "e1")), on: agent)
            try await expectDenied(.scheduleRequest(ScheduleRequest(requestID: "r", model: "m", promptTokens: 1)), on: agent)
            try await expectDenied(.membershipChangeRequest(MembershipChangeRequest(kind: .addLearner, nodeID: 9, address: "127.0.0.1:1")), on: agent)
            // The connection survives a refused call: the agent goes on reporting.
            let reports = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: "e1")))
            try await reports.send(.loadReport(LoadReport(instanceID: "e1", health: .healthy)))
            var acks = reports.inbound.makeAsyncIterator()
            guard case .reportAck = try await acks.next() else { Issue.record("the report was not acknowledged"); return }
            // A report about another instance on its own stream ends the stream.
            try await reports.send(.loadReport(LoadReport(instanceID: "e2", health: .unhealthy)))
            await #expect(throws: WireError.self) { while try await acks.next() != nil {} }

            let status = try await node.connect(role: .operator)
            defer { status.close() }
            guard case .statusReply(let reply) = try await status.call(.statusRequest(StatusRequest())) else { return }
            #expect(reply.instances.compactMap { $0.instance?.id } == ["e1"])
            #expect(reply.policy?.name == "prefix-cache")
            #expect(reply.instances.first?.instance?.state == .up)
        }
    }

    /// An operator's drain is how a compromised engine host is taken out of rotation: its agent
    /// must not lift it, by registering down then up, or by an unhealthy report then a healthy one.
    @Test func anAgentCannotLiftAnOperatorsDrain() async throws {
        try await SingleNode.with { node in
            let agent = try await connect(node, credential(node, .agent, "e1"))
            defer { agent.close() }
            let operatorConnection = try await connect(node, credential(node, .operator, "alice"))
            defer { operatorConnection.close() }
            func instance(_ state: InstanceState) -> Instance {
                Instance(id: "e1", endpointURL: "http://127.0.0.1:9/e1", model: "m", engine: .vllm, state: state)
            }
            func state() async throws -> InstanceState? {
                guard case .statusReply(let status) = try await operatorConnection.call(.statusRequest(StatusRequest())) else { return nil }
                return status.instances.first { $0.instance?.id == "e1" }?.instance?.state
            }
            _ = try await agent.call(.registerInstance(RegisterInstance(instance: instance(.down))))
            #expect(try await state() == .up, "a registration is up, whatever state the agent sends")
            _ = try await operatorConnection.call(.drainRequest(DrainRequest(instanceID: "e1")))
            #expect(try await state() == .draining)
            _ = try await agent.call(.registerInstance(RegisterInstance(instance: instance(.down))))
            _ = try await agent.call(.registerInstance(RegisterInstance(instance: instance(.up))))
            #expect(try await state() == .draining)
            let reports = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: "e1")))
            var acks = reports.inbound.makeAsyncIterator()
            for health in [Health.unhealthy, .healthy] {
                try await reports.send(.loadReport(LoadReport(instanceID: "e1", health: health)))
                guard case .reportAck = try await acks.next() else { Issue.record("no ack"); return }
            }
            // Reports propose in the background: give them the time a proposal takes, then look.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await state() == .draining)
            reports.cancel()
        }
    }

    @Test func aCredentialProvesOnlyItsOwnRoleAndID() async throws {
        try await SingleNode.with { node in
            let agentKey = credential(node, .agent, "e1").key
            for claimed in [Credential(role: .gateway, nodeID: "e1", key: agentKey), Credential(role: .agent, nodeID: "e2", key: agentKey),
                            Credential(role: .operator, nodeID: "e1", key: agentKey)] {
                do {
                    let connection = try await connect(node, claimed)
                    connection.close()
                    Issue.record("\(claimed) was accepted with agent e1's key")
                } catch let error as WireError {
                    #expect(error.code == .unauthenticated, "\(claimed): \(error)")
                }
            }
            // The operator's own credential steers.
            let operatorConnection = try await connect(node, credential(node, .operator, "alice"))
            defer { operatorConnection.close() }
            guard case .ack = try await operatorConnection.call(.setPolicyRequest(SetPolicyRequest(policy: PolicyConfig(name: "round-robin")))) else {
                Issue.record("the operator could not set the policy")
                return
            }
        }
    }
}
