import Raft
import Routing
import Scheduler
import SchedulerCore
import Testing
import Wire

@Suite struct RaftWireMappingTests {
    static let membership = Raft.Membership(voters: [1, 2, 3], learners: [4], incarnations: [1: 11, 4: 44], addresses: [4: "10.0.0.4:7000"])
    static let bodies: [Raft.Message.Body] = [
        .voteRequest(.init(preVote: true, lastLogIndex: 41, lastLogTerm: 7, leadershipTransfer: false)),
        .voteRequest(.init(preVote: false, lastLogIndex: 41, lastLogTerm: 7, leadershipTransfer: true)),
        .voteResponse(.init(preVote: true, granted: true)),
        .append(.init(prevLogIndex: 40, prevLogTerm: 6, entries: [
            Raft.Entry(index: 41, term: 7, kind: .noop),
            Raft.Entry(index: 42, term: 7, kind: .command, data: [1, 2, 3]),
            Raft.Entry(index: 43, term: 7, kind: .membership, data: [9]),
        ], leaderCommit: 39)),
        .appendResponse(.init(success: false, rejectIndex: 40, hintIndex: 30, hintTerm: 5)),
        .appendResponse(.init(success: true, matchIndex: 43)),
        .heartbeat(.init(commit: 43, readRound: 12)),
        .heartbeatResponse(.init(readRound: 12)),
        .snapshotChunk(.init(metadata: SnapshotMetadata(index: 100, term: 9, membership: membership), offset: 262_144, totalSize: 600_000, data: Array(repeating: 7, count: 100), done: false)),
        .snapshotResponse(.init(snapshotIndex: 100, nextOffset: 524_288, accepted: true, installed: false)),
        .timeoutNow,
    ]

    @Test(arguments: bodies)
    func everyMessageSurvivesTheWireUnchanged(body: Raft.Message.Body) throws {
        let message = Raft.Message(from: 2, to: 3, term: 7, body: body, incarnation: 0x1234_5678_9abc_def0)
        let bytes = Envelope(callID: 0, body: .raftMessage(RaftWireMapping.wire(message))).serializedBytes()
        let decoded = try Envelope(serializedBytes: bytes)
        guard case .raftMessage(let wire) = decoded.body else {
            Issue.record("not a Raft message")
            return
        }
        #expect(try RaftWireMapping.core(wire) == message)
    }

    @Test func aMessageWithoutKindOrMembershipIsRefused() {
        #expect(throws: RaftWireMapping.MappingError.missingKind) {
            try RaftWireMapping.core(Wire.RaftMessage(from: 1, to: 2, term: 3, kind: nil))
        }
        #expect(throws: RaftWireMapping.MappingError.missingMembership) {
            try RaftWireMapping.core(Wire.RaftMessage(from: 1, to: 2, term: 3, kind: .snapshotChunk(Wire.SnapshotChunk(lastIncludedIndex: 1))))
        }
    }

    /// A snapshot's membership from a peer is held to what a leader could have written.
    @Test(arguments: [
        Wire.Membership(voters: [], learners: [4]),
        Wire.Membership(voters: [1, 2], learners: [2]),
        Wire.Membership(voters: [1, 1, 2]),
        Wire.Membership(voters: [0, 1]),
        Wire.Membership(voters: [1], identities: [MemberIdentity(id: 9, incarnation: 5)]),
        Wire.Membership(voters: [1], identities: [MemberIdentity(id: 1, incarnation: 5), MemberIdentity(id: 1, incarnation: 6)]),
        Wire.Membership(voters: [1], identities: [MemberIdentity(id: 1, address: String(repeating: "a", count: 300))]),
    ])
    func anImpossibleMembershipIsRefused(membership: Wire.Membership) {
        let chunk = Wire.SnapshotChunk(lastIncludedIndex: 1, membership: membership, done: true)
        #expect(throws: RaftWireMapping.MappingError.invalidMembership) {
            try RaftWireMapping.core(Wire.RaftMessage(from: 1, to: 2, term: 3, kind: .snapshotChunk(chunk)))
        }
    }
}

@Suite struct SchedulerCommandCodingTests {
    static let record = InstanceRecord(
        id: "engine-1", endpointURL: "http://127.0.0.1:8001", model: "tiny", aliases: ["tiny-chat"], adapters: ["sql", "poet"],
        engine: .sglang, role: .decode, state: .draining,
        kvCapacityTokens: 4096, kvBlockSize: 16, agentNode: "agent-1", stateChangedUnixMilliseconds: 1_795_000_000_000,
        stateReason: "operator drain")

    static var commands: [SchedulerCore.SchedulerCommand] {
        var policy = PolicyConfiguration()
        policy.name = .llmMetrics
        policy.loadWeight = 2.5
        return [
            .upsertInstance(record),
            .upsertInstance(InstanceRecord(id: "e2", endpointURL: "http://x", model: "m")),
            .setInstanceState(id: "engine-1", state: .down, reason: "missed heartbeats", atUnixMilliseconds: 12),
            .removeInstance(id: "engine-1"),
            .setPolicy(policy),
            .affinity([.init(instanceID: "engine-1", hashes: [1, .max, 3]), .init(instanceID: "e2", hashes: [])]),
        ]
    }

    @Test func everyCommandRoundTrips() throws {
        for command in Self.commands {
            #expect(try SchedulerCommandCoding.decodeCommand(SchedulerCommandCoding.encode(command)) == command)
        }
    }

    @Test func aSnapshotRoundTripsIntoAnEqualStateMachine() throws {
        var state = SchedulerStateMachine()
        for command in Self.commands.prefix(3) { _ = state.apply(command) }
        _ = state.apply(.affinity([.init(instanceID: "e2", hashes: Array(1...300))]))
        let bytes = SchedulerCommandCoding.encode(state.snapshot)
        let restored = SchedulerStateMachine(snapshot: try SchedulerCommandCoding.decodeSnapshot(bytes))
        #expect(restored == state)
        let untouched = SchedulerStateMachine(snapshot: try SchedulerCommandCoding.decodeSnapshot(SchedulerCommandCoding.encode(SchedulerStateMachine().snapshot)))
        #expect(untouched.policy == nil)  // no operator's policy: each leader keeps using its config's
    }

    @Test func badBytesGetAClearError() {
        #expect(throws: SchedulerCommandCoding.CodingError.emptyCommand) { try SchedulerCommandCoding.decodeCommand([]) }
        #expect(throws: SchedulerCommandCoding.CodingError.self) { try SchedulerCommandCoding.decodeCommand([0xFF, 0xFF, 0xFF]) }
        let unknownPolicy = Wire.SchedulerCommand(command: .setPolicy(Wire.PolicyConfig(name: "fastest"))).serializedBytes()
        #expect(throws: SchedulerCommandCoding.CodingError.unknownPolicy("fastest")) { try SchedulerCommandCoding.decodeCommand(unknownPolicy) }
        let badParameter = Wire.SchedulerCommand(command: .setPolicy(Wire.PolicyConfig(name: "round-robin", params: [.init(key: "kv_pressure", value: 7)]))).serializedBytes()
        #expect(throws: SchedulerCommandCoding.CodingError.badPolicyParameter("policy parameter kv_pressure must be from 0 to 1")) {
            try SchedulerCommandCoding.decodeCommand(badParameter)
        }
        let noState = Wire.SchedulerCommand(command: .setInstanceState(Wire.InstanceStateChange(instanceID: "e1"))).serializedBytes()
        #expect(throws: SchedulerCommandCoding.CodingError.unspecifiedState("e1")) { try SchedulerCommandCoding.decodeCommand(noState) }
    }
}
