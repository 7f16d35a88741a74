import ProcessHarness
import Foundation
import Testing
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// The scheduler trio as three real processes: `kill -9` of the leader, restart, and the loss of
/// two members. Needs the `junction` binary (`make test` builds it first).
@Suite(.serialized, .timeLimit(.minutes(2))) struct TrioFailoverTests {
    private static let promptChunks = 40
    private static let promptTokens: UInt32 = 2_600

    private func prompt(_ n: UInt64) -> [UInt64] { (0..<UInt64(Self.promptChunks)).map { n &* 7_919 &+ $0 &+ 1 } }

    /// Schedules and at once finishes (so in-flight counts stay zero and only affinity decides).
    private func scheduleAndFinish(_ n: UInt64, on connection: WireConnection) async throws -> Envelope.Body {
        let reply = try await connection.call(
            .scheduleRequest(ScheduleRequest(requestID: "r\(n)", model: "m", prefixHashes: prompt(n), promptTokens: Self.promptTokens)),
            timeout: .milliseconds(500))
        if case .scheduleReply(let answer) = reply, case .assigned(let assignment) = answer.outcome {
            _ = try await connection.call(.finishRequest(FinishRequest(requestID: "r\(n)", instanceID: assignment.instanceID, outcome: .ok)))
        }
        return reply
    }

    private func assignedInstance(_ reply: Envelope.Body) -> String? {
        guard case .scheduleReply(let answer) = reply, case .assigned(let assignment) = answer.outcome else { return nil }
        return assignment.instanceID
    }

    private func instanceSummary(_ status: StatusReply) -> [String] {
        status.instances.compactMap { $0.instance.map { "\($0.id) \($0.state) \($0.endpointURL)" } }
    }

    /// Waits until every node in `ids` has applied the same index and holds the affinity of all 24 prompts.
    private func waitForReplication(_ trio: LocalSchedulerTrio, _ ids: [UInt64]) async throws {
        for _ in 0..<200 {
            var statuses: [StatusReply] = []
            for id in ids { if let status = await trio.status(id) { statuses.append(status) } }
            let applied = Set(statuses.map(\.appliedIndex))
            let affinity = Set(statuses.map { $0.instances.map(\.affinityEntries) })
            if statuses.count == ids.count, applied.count == 1, affinity.count == 1, affinity.first?.reduce(0, +) == 24 * UInt32(Self.promptChunks) { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw WireError(.unavailable, "nodes \(ids) did not converge")
    }

    @Test func killingTheLeaderKeepsRegistryAndAffinityAndALoneNodeCannotDecide() async throws {
        try await LocalSchedulerTrio.with(binary: builtJunctionBinary()) { try await run($0) }
    }

    private func run(_ trio: LocalSchedulerTrio) async throws {
        for id: UInt64 in 1...3 { try await trio.start(id) }
        let leader = try await trio.waitForLeader(among: [1, 2, 3])
        let followers = [UInt64(1), 2, 3].filter { $0 != leader }

        // A follower redirects calls that need the leader.
        let atFollower = try await trio.connect(followers[0])
        let redirected = try await atFollower.call(.scheduleRequest(ScheduleRequest(requestID: "r-redirected", model: "m", promptTokens: 1)))
        guard case .notLeader(let hint) = redirected else { throw WireError(.internal, "a follower answered \(redirected.name)") }
        #expect(hint.leaderID == leader && hint.leaderAddress == "127.0.0.1:\(trio.ports[leader]!)")
        atFollower.close()

        let client = try await trio.connect(leader)
        for n in 0..<4 { try await trio.register("e\(n)", at: leader) }
        var before: [UInt64: String] = [:]
        for n: UInt64 in 0..<24 { before[n] = assignedInstance(try await scheduleAndFinish(n, on: client)) }
        #expect(before.count == 24 && Set(before.values).count > 1, "fresh prompts spread: \(before)")
        try await waitForReplication(trio, [1, 2, 3])
        let statusBefore = try #require(await trio.status(leader))
        client.close()

        // kill -9 the leader; a survivor must answer `schedule` soon, with the same decisions.
        await trio.signal(leader, SIGKILL)
        let killedAt = ContinuousClock.now
        let survivors = followers.map { id in (id, Task { try await trio.connect(id) }) }
        var connections: [UInt64: WireConnection] = [:]
        for (id, task) in survivors { connections[id] = try await task.value }
        var newLeader: UInt64?
        var firstAnswer: Envelope.Body?
        while newLeader == nil, ContinuousClock.now - killedAt < .seconds(10) {
            for id in followers {
                if let reply = try? await scheduleAndFinish(0, on: connections[id]!), assignedInstance(reply) != nil {
                    newLeader = id
                    firstAnswer = reply
                    break
                }
            }
            if newLeader == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let failover = ContinuousClock.now - killedAt
        let elected = try #require(newLeader, "no survivor answered schedule within 10 s")
        print("trio failover: a new leader (node \(elected)) answered schedule \(failover) after kill -9 of node \(leader)")
        #expect(failover < .seconds(2.5), "failover took \(failover)")
        #expect(assignedInstance(firstAnswer!) == before[0])
        for n: UInt64 in 1..<24 {
            #expect(assignedInstance(try await scheduleAndFinish(n, on: connections[elected]!)) == before[n], "prompt \(n)")
        }
        let statusAfter = try #require(await trio.status(elected))
        #expect(statusAfter.leaderID == elected && statusAfter.term > statusBefore.term)
        #expect(instanceSummary(statusAfter) == instanceSummary(statusBefore))

        // `junction ctl status` names the new leader and shows the same instances.
        let printed = try await trio.ctl(["status", "--json"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any], "ctl printed: \(printed)")
        #expect((json["leader_id"] as? Int).map(UInt64.init) == elected)
        #expect((json["instances"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["e0", "e1", "e2", "e3"])

        // The killed node restarts from its data directory and catches up.
        try await trio.start(leader)
        try await waitForReplication(trio, [1, 2, 3])
        let rejoined = try #require(await trio.status(leader))
        #expect(rejoined.leaderID == elected && rejoined.raftState == "follower")
        #expect(instanceSummary(rejoined) == instanceSummary(statusBefore))

        // Two members lost: the last one must not decide, and says that no leader is known.
        let last = followers.first { $0 != elected }!
        await trio.signal(elected, SIGKILL)
        await trio.signal(leader, SIGKILL)
        let lostAt = ContinuousClock.now
        var assignedAlone = 0
        var sawNoLeader = false
        while ContinuousClock.now - lostAt < .seconds(3) {
            let reply = try? await scheduleAndFinish(1, on: connections[last]!)
            if let reply, assignedInstance(reply) != nil { assignedAlone += 1 }
            if case .notLeader(let hint) = reply, hint.leaderID == 0, hint.leaderAddress.isEmpty { sawNoLeader = true }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(assignedAlone == 0)
        #expect(sawNoLeader)
        let alone = try #require(await trio.status(last))
        #expect(alone.leaderID == 0 && alone.raftState != "leader")

        // One member back makes a majority again.
        try await trio.start(elected)
        let recovered = try await trio.waitForLeader(among: [last, elected])
        let again = try await trio.connect(recovered)
        let answer = try await scheduleAndFinish(2, on: again)
        #expect(assignedInstance(answer) == before[2], "after recovery: \(answer)")
        again.close()
        for connection in connections.values { connection.close() }
    }
}
