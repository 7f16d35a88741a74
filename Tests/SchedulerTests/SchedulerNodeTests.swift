import Foundation
import Scheduler
import Testing
import Wire

/// The node's wire services on a one-member group in process.
@Suite(.timeLimit(.minutes(1))) struct SchedulerNodeTests {
    /// A chain of `length` distinct hashes unique to `seed`.
    private func chain(_ seed: UInt64, _ length: Int) -> [UInt64] { (0..<UInt64(length)).map { seed &* 1_000_003 &+ $0 } }

    private func schedule(_ chain: [UInt64], tokens: UInt32, on connection: WireConnection) async throws -> ScheduleReply {
        let reply = try await connection.call(
            .scheduleRequest(ScheduleRequest(requestID: "r", model: "m", prefixHashes: chain, promptTokens: tokens)))
        guard case .scheduleReply(let answer) = reply else { throw WireError(.internal, "schedule: \(reply.name)") }
        return answer
    }

    @Test func theInstanceTableIsPushedOnEveryRegistryChange() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            let stream = try await connection.openStream(.subscribeInstances(SubscribeInstances()))
            var tables = stream.inbound.makeAsyncIterator()
            guard case .instanceTable(let first) = try await tables.next() else { Issue.record("no table"); return }
            #expect(first.instances.map(\.id) == ["a"] && first.leaderID == 1 && first.version >= 1)

            try await node.register("b")
            guard case .instanceTable(let second) = try await tables.next() else { Issue.record("no second table"); return }
            #expect(second.instances.map(\.id) == ["a", "b"] && second.version > first.version)

            let operatorConnection = try await node.connect(role: .operator)
            defer { operatorConnection.close() }
            _ = try await operatorConnection.call(.drainRequest(DrainRequest(instanceID: "a")))
            guard case .instanceTable(let third) = try await tables.next() else { Issue.record("no third table"); return }
            #expect(third.instances.first?.state == .draining && third.version > second.version)

            // Registering the same description again changes nothing, so nothing is pushed; a
            // deregistration is the next table.
            try await node.register("b")
            _ = try await operatorConnection.call(.deregisterInstance(DeregisterInstance(instanceID: "b")))
            guard case .instanceTable(let fourth) = try await tables.next() else { Issue.record("no fourth table"); return }
            #expect(fourth.instances.map(\.id) == ["a"] && fourth.version == third.version + 1)
            stream.cancel()
        }
    }

    /// An agent that drained its engine as it stopped, and died before deregistering, must not
    /// leave the engine out of rotation when it comes back; an operator's drain stays.
    @Test func reRegisteringEndsAnAgentsDrainButNotAnOperators() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            try await node.register("b")
            let agentA = try await node.connect(role: .agent, nodeID: "a")
            defer { agentA.close() }
            let operatorConnection = try await node.connect(role: .operator)
            defer { operatorConnection.close() }
            _ = try await agentA.call(.drainRequest(DrainRequest(instanceID: "a", agentStopping: true)))
            _ = try await operatorConnection.call(.drainRequest(DrainRequest(instanceID: "b")))
            #expect(try await states(connection) == ["a": .draining, "b": .draining])
            try await node.register("a")
            try await node.register("b")
            #expect(try await states(connection) == ["a": .up, "b": .draining])
        }
    }

    private func states(_ connection: WireConnection) async throws -> [String: InstanceState] {
        guard case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())) else { return [:] }
        return Dictionary(uniqueKeysWithValues: status.instances.compactMap { $0.instance }.map { ($0.id, $0.state) })
    }

    @Test func aRepeatedPromptFindsItsInstanceBeforeTheAffinityBatchCommits() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            for id in ["a", "b", "c", "d"] { try await node.register(id) }
            // 40 chunks of 64 tokens: the cached prefix outweighs one queued request (512 tokens).
            let prompt = chain(7, 40)
            let first = try await schedule(prompt, tokens: 2_600, on: connection)
            let second = try await schedule(prompt, tokens: 2_600, on: connection)
            guard case .assigned(let a) = first.outcome, case .assigned(let b) = second.outcome else {
                Issue.record("not assigned: \(first) \(second)")
                return
            }
            #expect(a.cachedChunks == 0)
            #expect(b.instanceID == a.instanceID && b.cachedChunks == 40)
        }
    }

    @Test func theConfiguredPolicyDecidesUntilAnOperatorSetsOne() async throws {
        try await SingleNode.with(policy: "round-robin") { node in
            let connection = try await node.connect(role: .operator)
            defer { connection.close() }
            let gateway = try await node.connect(role: .gateway)
            defer { gateway.close() }
            for id in ["a", "b", "c"] { try await node.register(id) }
            func policyName() async throws -> String? {
                guard case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())) else { return nil }
                return status.policy?.name
            }
            func instances(_ prompt: [UInt64]) async throws -> [String] {
                var chosen: [String] = []
                for _ in 0..<3 {
                    guard case .assigned(let a) = try await schedule(prompt, tokens: 2_600, on: gateway).outcome else { return [] }
                    chosen.append(a.instanceID)
                }
                return chosen
            }
            #expect(try await policyName() == "round-robin")
            // Round-robin ignores the cache: the same prompt goes to each instance in turn.
            #expect(Set(try await instances(chain(7, 40))).count == 3)
            let reply = try await connection.call(.setPolicyRequest(SetPolicyRequest(policy: PolicyConfig(name: "prefix-cache"))))
            guard case .ack = reply else { throw WireError(.internal, "set-policy: \(reply.name)") }
            #expect(try await policyName() == "prefix-cache")
            // A new prompt keeps landing where it went first (the one above is now cached everywhere).
            #expect(Set(try await instances(chain(8, 40))).count == 1)
        }
    }

    @Test func aWaitingModelGetsACapacitySignalWhenAnInstanceFreesUp() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            let agent = try await node.connect(role: .agent, nodeID: "a")
            defer { agent.close() }
            let reports = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: "a")))
            try await reports.send(.loadReport(LoadReport(instanceID: "a", health: .healthy, running: 200, waiting: 80, kvUsage: 0.99)))
            let signals = try await connection.openStream(.subscribeCapacity(SubscribeCapacity(model: "m")))

            var answer = try await schedule([1], tokens: 10, on: connection)
            for _ in 0..<100 where answer.outcome.map({ if case .wait = $0 { false } else { true } }) ?? true {
                try await Task.sleep(for: .milliseconds(10))  // the report is handled concurrently with this call
                answer = try await schedule([1], tokens: 10, on: connection)
            }
            guard case .wait(let hint) = answer.outcome else { Issue.record("expected wait, got \(answer)"); return }
            #expect(hint.retryAfterMs == 200 && hint.reason.contains("saturated"))

            try await reports.send(.loadReport(LoadReport(instanceID: "a", health: .healthy, running: 200, waiting: 10, kvUsage: 0.9)))
            var iterator = signals.inbound.makeAsyncIterator()
            guard case .capacityAvailable(let signal) = try await iterator.next() else { Issue.record("no capacity signal"); return }
            #expect(signal.model == "m" && signal.instanceID == "a" && signal.freeSlots == 54)
            guard case .assigned(let assignment) = try await schedule([1], tokens: 10, on: connection).outcome else {
                Issue.record("still not assigned")
                return
            }
            #expect(assignment.instanceID == "a")
            signals.cancel()
            reports.cancel()
        }
    }

    /// A request whose priority class asks for headroom (flow control's batch) waits while the
    /// instance has none, though a request without it is assigned; the capacity signal comes when
    /// a report shows the room it asked for, not before.
    @Test func aRequestAskingForHeadroomWaitsForItAndItsSignalComesWithIt() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            let agent = try await node.connect(role: .agent, nodeID: "a")
            defer { agent.close() }
            let reports = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: "a")))
            try await reports.send(.loadReport(LoadReport(instanceID: "a", health: .healthy, running: 10, waiting: 2, kvUsage: 0.5)))
            let signals = try await connection.openStream(.subscribeCapacity(SubscribeCapacity(model: "m")))
            func schedule(_ id: String, headroom: EngineHeadroom?) async throws -> ScheduleReply.Outcome? {
                let reply = try await connection.call(
                    .scheduleRequest(ScheduleRequest(requestID: id, model: "m", prefixHashes: [9], promptTokens: 10, headroom: headroom)))
                guard case .scheduleReply(let answer) = reply else { return nil }
                return answer.outcome
            }
            let batch = EngineHeadroom(maxWaiting: 0, maxKvUsage: 0.8)
            var answer = try await schedule("batch-1", headroom: batch)
            for _ in 0..<100 where answer.map({ if case .wait = $0 { false } else { true } }) ?? true {
                try await Task.sleep(for: .milliseconds(10))  // the report is handled concurrently with this call
                answer = try await schedule("batch-1", headroom: batch)
            }
            guard case .wait(let hint) = answer else { Issue.record("expected wait, got \(String(describing: answer))"); return }
            #expect(hint.reason.contains("headroom"))
            guard case .assigned = try await schedule("plain", headroom: nil) else { Issue.record("a request without headroom waited"); return }
            // Still one waiting: no room for batch, no signal. Then none waiting: the signal.
            try await reports.send(.loadReport(LoadReport(instanceID: "a", health: .healthy, running: 10, waiting: 1, kvUsage: 0.5)))
            try await reports.send(.loadReport(LoadReport(instanceID: "a", health: .healthy, running: 10, waiting: 0, kvUsage: 0.5)))
            var iterator = signals.inbound.makeAsyncIterator()
            guard case .capacityAvailable(let signal) = try await iterator.next() else { Issue.record("no capacity signal"); return }
            // 64 (saturated_waiting) less nothing queued: the report with none waiting sent it.
            #expect(signal.instanceID == "a" && signal.freeSlots == 64)
            guard case .assigned(let assignment) = try await schedule("batch-2", headroom: batch) else { Issue.record("batch still waits"); return }
            #expect(assignment.instanceID == "a")
            // A bound the gateway cannot mean is refused, not applied.
            let bad = await #expect(throws: WireError.self) {
                try await connection.call(
                    .scheduleRequest(ScheduleRequest(requestID: "bad", model: "m", prefixHashes: [9], promptTokens: 10,
                        headroom: EngineHeadroom(maxWaiting: 0, maxKvUsage: .nan))))
            }
            #expect(bad?.message.contains("max_kv_usage") == true)
            // The connection and the node serve on.
            guard case .assigned = try await schedule("after", headroom: nil) else { Issue.record("not served after a bad request"); return }
            signals.cancel()
            reports.cancel()
        }
    }

    /// A conversation's follower whose system prompt its instance is computing for a request that
    /// engine has not admitted yet is held (the gateway asks again), until a report shows nothing
    /// waiting there; then it goes to that instance.
    @Test func aFollowerIsHeldUntilItsPrefixHasBegunOnItsInstance() async throws {
        try await SingleNode.with { node in
            // Holds as long as the policy allows, whatever the machine's pace: no bound by the
            // time to compute the prefix again (1 token a second), and 10 s in all.
            let pool = try await ReportingInstances.open(on: node, ["a"], params: ["prefill_tokens_per_second": 1, "prefix_hold_ms": 10_000])
            defer { pool.close() }
            // Busy (it runs one request) with no queue: the first request of the prompt will wait for
            // the step in progress, and a report can show when it was admitted.
            try await pool.report("a", running: 1, waiting: 0)
            func schedule(_ id: String, _ chain: [UInt64], acceptsHold: Bool = true) async throws -> ScheduleReply.Outcome? {
                let reply = try await pool.connection.call(
                    .scheduleRequest(ScheduleRequest(requestID: id, model: "m", prefixHashes: chain, promptTokens: 1_600, acceptsHold: acceptsHold)))
                guard case .scheduleReply(let answer) = reply else { return nil }
                return answer.outcome
            }
            let system = chain(7, 24)
            guard case .assigned(let first) = try await schedule("first", system + [1]) else { Issue.record("first not assigned"); return }
            guard case .hold(let hold) = try await schedule("second", system + [2]) else { Issue.record("second not held"); return }
            #expect(hold.instanceID == first.instanceID && hold.warmingChunks == 24 && hold.retryAfterMs > 0 && hold.retryAfterMs <= 50)
            // Still held while the engine shows requests waiting.
            try await pool.report("a", running: 1, waiting: 3)
            guard case .hold = try await schedule("second", system + [2]) else { Issue.record("second not held while requests wait"); return }
            // A gateway that does not understand holds is never held.
            guard case .assigned = try await schedule("old-gateway", system + [3], acceptsHold: false) else {
                Issue.record("a request that does not accept holds was not assigned"); return
            }
            // Nothing waiting, in a report sent well after the first request went: it was admitted.
            try await Task.sleep(for: .milliseconds(30))
            try await pool.report("a", running: 1, waiting: 0)
            guard case .assigned(let second) = try await schedule("second", system + [2]) else { Issue.record("second still held"); return }
            #expect(second.instanceID == "a" && second.cachedChunks == 24)
            // An engine that keeps a queue holds nobody back: no report would show when to stop.
            try await pool.report("a", running: 1, waiting: 4)
            let other = chain(8, 24)
            guard case .assigned = try await schedule("third", other + [1]), case .assigned = try await schedule("fourth", other + [2]) else {
                Issue.record("a follower was held on an engine with a queue"); return
            }
        }
    }

    /// Between two reports the leader weighs what it sent each engine by the prompt tokens each
    /// request will compute there (the node hands every assignment's uncached tokens to its
    /// bookkeeping): after a 4,000-token prompt went to one of two idle engines, the short
    /// prompts that follow go to the other. Counted by requests, they would split.
    @Test func requestsSentSinceAReportWeighThePromptWorkTheyBring() async throws {
        try await SingleNode.with { node in
            let pool = try await ReportingInstances.open(on: node, ["a", "b"])
            defer { pool.close() }
            for id in ["a", "b"] { try await pool.report(id, running: 0, waiting: 0) }
            func schedule(_ id: String, _ chain: [UInt64], tokens: UInt32) async throws -> String? {
                let reply = try await pool.connection.call(
                    .scheduleRequest(ScheduleRequest(requestID: id, model: "m", prefixHashes: chain, promptTokens: tokens)))
                guard case .scheduleReply(let answer) = reply, case .assigned(let assignment) = answer.outcome else { return nil }
                return assignment.instanceID
            }
            let long = try #require(try await schedule("long", chain(1, 60), tokens: 4_000))
            var shortOnes: [String] = []
            for seed in 2...4 { shortOnes.append(try #require(try await schedule("short-\(seed)", chain(UInt64(seed), 1), tokens: 100))) }
            #expect(shortOnes == Array(repeating: long == "a" ? "b" : "a", count: 3), "long on \(long), short ones on \(shortOnes)")
        }
    }

    /// The instance tables pushed on `stream` until one has every wanted state.
    private func waitFor(_ wanted: [String: InstanceState], on tables: inout AsyncThrowingStream<Envelope.Body, any Error>.AsyncIterator) async throws -> InstanceTable? {
        while case .instanceTable(let table) = try await tables.next() {
            let states = Dictionary(uniqueKeysWithValues: table.instances.map { ($0.id, $0.state) })
            if wanted.allSatisfy({ states[$0.key] == $0.value }) { return table }
        }
        return nil
    }

    /// An agent's unhealthy report takes its instance down at once, and a healthy one brings it
    /// back. (The heartbeat timeout is the default minute, so silence plays no part: under a
    /// loaded machine a short one could mark the instance down for silence first.)
    @Test func anUnhealthyReportMarksAnInstanceDownAndAHealthyOneBringsItBack() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("sick")
            let stream = try await connection.openStream(.subscribeInstances(SubscribeInstances()))
            var tables = stream.inbound.makeAsyncIterator()
            let agent = try await node.connect(role: .agent, nodeID: "sick")
            defer { agent.close() }
            let reports = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: "sick")))
            try await reports.send(.loadReport(LoadReport(instanceID: "sick", health: .unhealthy)))
            let sickDown = try #require(try await waitFor(["sick": .down], on: &tables))
            #expect(sickDown.instances.first { $0.id == "sick" }?.stateReason.contains("unhealthy") == true)

            try await reports.send(.loadReport(LoadReport(instanceID: "sick", health: .healthy, running: 1)))
            let recovered = try #require(try await waitFor(["sick": .up], on: &tables))
            #expect(recovered.instances.first { $0.id == "sick" }?.stateReason == "engine recovered")
            guard case .assigned(let assignment) = try await schedule([9], tokens: 10, on: connection).outcome else {
                Issue.record("not assigned")
                return
            }
            #expect(assignment.instanceID == "sick")
            reports.cancel()
            stream.cancel()
        }
    }

    /// An instance whose agent never reports is marked down once the heartbeat timeout passes.
    @Test func silenceMarksAnInstanceDown() async throws {
        try await SingleNode.with(heartbeatTimeoutMilliseconds: 300) { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("quiet")
            let stream = try await connection.openStream(.subscribeInstances(SubscribeInstances()))
            var tables = stream.inbound.makeAsyncIterator()
            let quietDown = try #require(try await waitFor(["quiet": .down], on: &tables))
            #expect(quietDown.instances.first { $0.id == "quiet" }?.stateReason == "missed heartbeats")
            stream.cancel()
        }
    }

    @Test func aOneWayFinishReleasesTheInFlightSlot() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            guard case .assigned = try await schedule([5], tokens: 10, on: connection).outcome else { Issue.record("not assigned"); return }
            func inFlight() async throws -> UInt32? {
                guard case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())) else { return nil }
                return status.instances.first?.inFlight
            }
            #expect(try await inFlight() == 1)
            try await connection.sendOneWay(.finishRequest(FinishRequest(requestID: "r", instanceID: "a", outcome: .ok)))
            var released = false
            for _ in 0..<100 where !released {
                released = try await inFlight() == 0
                if !released { try await Task.sleep(for: .milliseconds(5)) }
            }
            #expect(released)
        }
    }

    @Test func anUnknownModelIsNotFoundAndAMissingInstanceIsAnError() async throws {
        try await SingleNode.with { node in
            let connection = try await node.connect()
            defer { connection.close() }
            try await node.register("a")
            await #expect(throws: WireError.self) {
                _ = try await connection.call(.scheduleRequest(ScheduleRequest(requestID: "r-other", model: "other", promptTokens: 1)))
            }
            do {
                _ = try await connection.call(.scheduleRequest(ScheduleRequest(requestID: "r-other", model: "other", promptTokens: 1)))
            } catch let error as WireError {
                #expect(error.code == .notFound && error.message.contains("no instance serves model 'other'"))
            }
            let agent = try await node.connect(role: .agent, nodeID: "a")
            defer { agent.close() }
            do {
                _ = try await agent.call(.registerInstance(RegisterInstance()))
                Issue.record("a registration without an instance was accepted")
            } catch let error as WireError {
                #expect(error.code != .permissionDenied, "refused for the missing instance, not for the role: \(error)")
            }
        }
    }
}

/// Instances registered on a node under prefix-cache, each with its agent's report stream, for
/// tests that drive the leader's decisions by the engine loads it has been told. Reports stay
/// fresh for an hour, however slowly the machine runs the test.
private struct ReportingInstances {
    let connection: WireConnection
    private let others: [WireConnection]
    private let streams: [String: WireStream]

    static func open(on node: SingleNode, _ ids: [String], params: [String: Double] = [:]) async throws -> ReportingInstances {
        let connection = try await node.connect()
        let operatorConnection = try await node.connect(role: .operator)
        defer { operatorConnection.close() }
        let all = params.merging(["stale_report_ms": 3_600_000]) { mine, _ in mine }
        _ = try await operatorConnection.call(
            .setPolicyRequest(SetPolicyRequest(policy: PolicyConfig(
                name: "prefix-cache", params: all.sorted { $0.key < $1.key }.map { PolicyParam(key: $0.key, value: $0.value) }))))
        var agents: [WireConnection] = []
        var streams: [String: WireStream] = [:]
        for id in ids {
            try await node.register(id)
            let agent = try await node.connect(role: .agent, nodeID: id)
            agents.append(agent)
            streams[id] = try await agent.openStream(.openReportStream(OpenReportStream(instanceID: id)))
        }
        return ReportingInstances(connection: connection, others: agents, streams: streams)
    }

    /// Sends `id`'s healthy report and returns once the leader holds it (so a report must differ
    /// from the one before it). Reports are handled concurrently with calls; no deadline of its
    /// own: the suite's time limit bounds it.
    func report(_ id: String, running: UInt32, waiting: UInt32) async throws {
        let stream = try #require(streams[id])
        try await stream.send(.loadReport(LoadReport(instanceID: id, health: .healthy, running: running, waiting: waiting, kvUsage: 0.1)))
        while true {
            if case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())),
                let last = status.instances.first(where: { $0.instance?.id == id })?.lastReport, last.running == running, last.waiting == waiting
            {
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func close() {
        for stream in streams.values { stream.cancel() }
        for agent in others { agent.close() }
        connection.close()
    }
}

/// Reuse grants (`reuse_ms`): what an assignment grants, and what the leader does with a request
/// a gateway sent under a grant.
@Suite(.timeLimit(.minutes(1))) struct ReuseGrantTests {
    private func chain(_ seed: UInt64, _ length: Int) -> [UInt64] { (0..<UInt64(length)).map { seed &* 1_000_003 &+ $0 } }

    private func call(_ request: ScheduleRequest, on connection: WireConnection) async throws -> Envelope.Body {
        try await connection.call(.scheduleRequest(request))
    }

    private func assignment(_ reply: Envelope.Body) -> Assignment? {
        guard case .scheduleReply(let answer) = reply, case .assigned(let assignment) = answer.outcome else { return nil }
        return assignment
    }

    private func inFlight(_ id: String, _ connection: WireConnection) async throws -> UInt32? {
        guard case .statusReply(let status) = try await connection.call(.statusRequest(StatusRequest())) else { return nil }
        return status.instances.first { $0.instance?.id == id }?.inFlight
    }

    @Test func theLeaderBooksAReusedTurnAndRenewsTheGrantOnlyWhileItWouldChooseTheSame() async throws {
        try await SingleNode.with { node in
            let pool = try await ReportingInstances.open(on: node, ["a", "b"], params: ["prefix_hold_ms": 0, "reuse_ms": 20_000])
            defer { pool.close() }
            try await pool.report("a", running: 0, waiting: 0)
            try await pool.report("b", running: 0, waiting: 0)
            // A first turn whose prompt (200 tokens) is less than one typical request's work (512),
            // as is all the work the instance is sent below, however little of it it has done.
            let first = chain(7, 3)
            let turn1 = try #require(assignment(try await call(
                ScheduleRequest(requestID: "t1", model: "m", prefixHashes: first, promptTokens: 200), on: pool.connection)))
            #expect(turn1.reuseMs == 20_000)
            let chosen = turn1.instanceID
            let other = chosen == "a" ? "b" : "a"

            // The next turn, already sent there: booked (a slot), and granted on (the leader
            // would send it there too: its 3 cached chunks).
            let second = first + chain(8, 2)
            let turn2 = try #require(assignment(try await call(
                ScheduleRequest(requestID: "t2", model: "m", prefixHashes: second, promptTokens: 330, reusedInstanceID: chosen),
                on: pool.connection)))
            #expect(turn2.instanceID == chosen && turn2.cachedChunks == 3 && turn2.reuseMs == 20_000)
            #expect(try await inFlight(chosen, pool.connection) == 2)

            // Its instance now runs far more than the other: the leader would move the
            // conversation, so the turn sent there under the last grant is booked but gets no
            // grant for the next.
            try await pool.report(chosen, running: 200, waiting: 0)
            let third = second + chain(9, 2)
            let turn3 = try #require(assignment(try await call(
                ScheduleRequest(requestID: "t3", model: "m", prefixHashes: third, promptTokens: 460, reusedInstanceID: chosen),
                on: pool.connection)))
            #expect(turn3.instanceID == chosen && turn3.reuseMs == 0)
            #expect(try await inFlight(chosen, pool.connection) == 3)
            // And the leader's own choice for such a turn is the other instance.
            let asked = try #require(assignment(try await call(
                ScheduleRequest(requestID: "t4", model: "m", prefixHashes: third + [1], promptTokens: 500), on: pool.connection)))
            #expect(asked.instanceID == other)

            // An instance keeping a queue grants nothing, not even to a request it is chosen for.
            try await pool.report(other, running: 0, waiting: 2)
            let queued = try #require(assignment(try await call(
                ScheduleRequest(requestID: "t6", model: "m", prefixHashes: third + [1] + [2], promptTokens: 520, reusedInstanceID: other),
                on: pool.connection)))
            #expect(queued.instanceID == other && queued.reuseMs == 0)

            // Nor one with a long prompt to compute: a new conversation's first turn of 4,000
            // tokens (more than one typical request's 512) on an idle instance.
            try await pool.report(other, running: 0, waiting: 0)
            let long = try #require(assignment(try await call(
                ScheduleRequest(requestID: "t7", model: "m", prefixHashes: chain(11, 60), promptTokens: 4_000), on: pool.connection)))
            #expect(long.reuseMs == 0)

            // A notice naming an instance that is not there books nothing.
            await #expect(throws: WireError.self) {
                _ = try await call(
                    ScheduleRequest(requestID: "t5", model: "m", prefixHashes: third, promptTokens: 10, reusedInstanceID: "gone"),
                    on: pool.connection)
            }
        }
    }

    @Test func onlyTheAffinityPoliciesGrantReuse() async throws {
        try await SingleNode.with(policy: "round-robin") { node in
            let gateway = try await node.connect(role: .gateway)
            defer { gateway.close() }
            try await node.register("a")
            let roundRobin = try #require(assignment(try await call(
                ScheduleRequest(requestID: "r1", model: "m", prefixHashes: chain(1, 4), promptTokens: 256), on: gateway)))
            #expect(roundRobin.reuseMs == 0)
            // Nor does a reused request sent under an earlier policy's grant get one.
            let reused = try #require(assignment(try await call(
                ScheduleRequest(requestID: "r2", model: "m", prefixHashes: chain(1, 8), promptTokens: 512, reusedInstanceID: "a"), on: gateway)))
            #expect(reused.instanceID == "a" && reused.reuseMs == 0)
        }
    }
}
