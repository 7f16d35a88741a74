@testable import Wire

/// One populated instance of every body, with non-default values in every field, so round trips
/// exercise each field's conversion.
enum Samples {
    static let instance = Instance(
        id: "engine-a", endpointURL: "http://127.0.0.1:8001", model: "qwen-7b", engine: .vllm, role: .decode,
        state: .draining, kvCapacityTokens: 1_234_567, kvBlockSize: 16, agentNode: "agent-a",
        stateChangedUnixMs: 1_700_000_000_123, stateReason: "operator drain ✓")

    static let report = LoadReport(
        instanceID: "engine-a", sequence: 99, health: .unhealthy, running: 12, waiting: 3, kvUsage: 0.625,
        promptTokensPerS: 1234.5, generationTokensPerS: 987.25, prefixCacheHitRate: 0.42, kvCapacityTokens: 65536,
        scrapeAgeMs: 120, sentUnixMs: 1_700_000_000_999)

    static let schedule = ScheduleRequest(
        requestID: "req-1", model: "qwen-7b", prefixHashes: (0..<64).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 },
        promptTokens: 1790, maxTokens: 1320, excludeInstances: ["engine-b", "", "engine-c"], sessionKey: "conv-9", chunkChars: 256)

    static let policy = PolicyConfig(name: "prefix-cache", params: [PolicyParam(key: "load_weight", value: 1.5), PolicyParam(key: "max_waiting", value: 8)])

    static let raft = RaftMessage(from: 1, to: 3, term: 12, kind: .appendRequest(AppendRequest(
        prevLogIndex: 41, prevLogTerm: 11,
        entries: [
            LogEntry(index: 42, term: 12, type: .noop),
            LogEntry(index: 43, term: 12, type: .command, data: SchedulerCommand(command: .upsertInstance(instance)).serializedBytes()),
            LogEntry(index: 44, term: 12, type: .membership, data: Membership(voters: [1, 2, 3], learners: [4]).serializedBytes()),
        ],
        leaderCommit: 40)))

    static let bodies: [Envelope.Body] = [
        .hello(Hello(protocolVersion: 1, role: .agent, nodeID: "agent-a", nonce: Array(0..<32), proof: Array(repeating: 0xAB, count: 32), softwareVersion: "junction 0.1.0")),
        .helloAck(HelloAck(proof: [1, 2, 3], nodeID: "1")),
        .error(ErrorMessage(code: .noQuorum, message: "no quorum: 1 of 3 members reachable", retryAfterMs: 250)),
        .ping(Ping(nonce: .max)),
        .pong(Pong(nonce: 7)),
        .cancel(Cancel(reason: "timed out")),
        .end(End()),
        .ack(Ack(index: 77, message: "drained")),
        .notLeader(NotLeader(leaderID: 2, leaderAddress: "127.0.0.1:7002", term: 9)),
        .registerInstance(RegisterInstance(instance: instance)),
        .registerReply(RegisterReply(instanceID: "engine-a", reportIntervalMs: 250, heartbeatTimeoutMs: 1000, index: 5)),
        .openReportStream(OpenReportStream(instanceID: "engine-a")),
        .loadReport(report),
        .reportAck(ReportAck(sequence: 42)),
        .deregisterInstance(DeregisterInstance(instanceID: "engine-a", reason: "SIGTERM")),
        .scheduleRequest(schedule),
        .scheduleReply(ScheduleReply(outcome: .assigned(Assignment(
            instanceID: "engine-a", endpointURL: "http://127.0.0.1:8001", engine: .sglang, cachedChunks: 12, policy: "pd-split",
            prefillInstanceID: "engine-p", prefillEndpointURL: "http://127.0.0.1:8101")))),
        .scheduleReply(ScheduleReply(outcome: .wait(WaitHint(retryAfterMs: 500, reason: "all instances saturated")))),
        .finishRequest(FinishRequest(requestID: "req-1", instanceID: "engine-a", outcome: .clientCancelled, promptTokens: 1790, completionTokens: 12, cachedTokens: 1024, ttftMs: 250, totalMs: 900, prefillInstanceID: "engine-p")),
        .subscribeInstances(SubscribeInstances(knownVersion: 3)),
        .instanceTable(InstanceTable(version: 4, instances: [instance, Instance(id: "engine-b")], leaderID: 1, term: 9)),
        .subscribeCapacity(SubscribeCapacity(model: "qwen-7b")),
        .capacityAvailable(CapacityAvailable(model: "qwen-7b", instanceID: "engine-a", freeSlots: 3)),
        .budgetLeaseRequest(
            BudgetLeaseRequest(
                holder: 0xFEED,
                tenants: [
                    TenantLeaseAsk(
                        tenant: "nightly-eval", maxConcurrent: 8, requestsPerMinute: 600, tokensPerMinute: 2_000_000, unspentRequests: 3,
                        unspentTokens: -120.5, inFlight: 4, wantConcurrent: 6, wantRequests: 20, wantTokens: 40_000, needRequests: 1,
                        needTokens: 900)
                ])),
        .budgetLeaseReply(
            BudgetLeaseReply(
                leaseMs: 3_000, gateways: 2,
                grants: [TenantLeaseGrant(tenant: "nightly-eval", concurrent: 5, requests: 10, tokens: 20_000.5, retryAfterMs: 250)])),
        .tenantsRequest(TenantsRequest()),
        .tenantsReply(
            TenantsReply(
                tenants: [
                    TenantBudget(
                        tenant: "nightly-eval", maxConcurrent: 8, requestsPerMinute: 600, tokensPerMinute: 2_000_000, requestsAvailable: 580.5,
                        tokensAvailable: 1_900_000, concurrentLeased: 6, inFlight: 4, holders: 2, requestsUsed: 20, tokensUsed: 100_000)
                ], leaseMs: 3_000, gateways: 2, leaderForMs: 61_000)),
        .statusRequest(StatusRequest()),
        .statusReply(StatusReply(
            nodeID: 1, leaderID: 1, term: 9, commitIndex: 100, appliedIndex: 99, raftState: "leader",
            members: [MemberStatus(id: 2, address: "127.0.0.1:7002", reachable: true, matchIndex: 100, lastContactMs: 12)],
            instances: [InstanceStatus(instance: instance, lastReport: report, reportAgeMs: 80, inFlight: 4, affinityEntries: 1000)],
            policy: policy, registryVersion: 4)),
        .setPolicyRequest(SetPolicyRequest(policy: policy)),
        .drainRequest(DrainRequest(instanceID: "engine-a", undrain: true, agentStopping: true)),
        .membershipChangeRequest(MembershipChangeRequest(kind: .addLearner, nodeID: 4, address: "10.0.0.4:7000")),
        .raftMessage(raft),
        .raftMessage(RaftMessage(from: 2, to: 1, term: 12, kind: .voteRequest(VoteRequest(preVote: true, lastLogIndex: 44, lastLogTerm: 12, leadershipTransfer: true)))),
        .raftMessage(RaftMessage(from: 1, to: 2, term: 12, kind: .voteResponse(VoteResponse(preVote: true, granted: true)))),
        .raftMessage(RaftMessage(from: 3, to: 1, term: 12, kind: .appendResponse(AppendResponse(success: false, matchIndex: 0, rejectIndex: 41, hintIndex: 30, hintTerm: 10)))),
        .raftMessage(RaftMessage(from: 1, to: 3, term: 12, kind: .snapshotChunk(SnapshotChunk(
            lastIncludedIndex: 40, lastIncludedTerm: 11, membership: Membership(voters: [1, 2, 3]), offset: 65536,
            data: Array(repeating: 0x5A, count: 1000), done: true, totalSize: 66536)))),
        .raftMessage(RaftMessage(from: 3, to: 1, term: 12, kind: .snapshotResponse(SnapshotResponse(lastIncludedIndex: 40, nextOffset: 66536, success: true, done: true)))),
        .raftMessage(RaftMessage(from: 1, to: 2, term: 12, kind: .timeoutNow(TimeoutNow()))),
        .forwardProposal(ForwardProposal(command: SchedulerCommand(command: .removeInstance("engine-b")).serializedBytes())),
        .proposalReply(ProposalReply(index: 45, term: 12)),
        .readIndexRequest(ReadIndexRequest()),
        .readIndexReply(ReadIndexReply(index: 45)),
    ]
}
