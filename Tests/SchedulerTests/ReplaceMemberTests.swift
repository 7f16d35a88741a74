import Foundation
import ProcessHarness
import Testing
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// `junction ctl replace-member` swaps node 3 for a new node 4 while `schedule` calls keep
/// coming: every call is answered with an assignment (at the leader of the moment), no term has
/// two leaders, and afterwards node 4 is a voter the group needs.
@Suite(.serialized) struct ReplaceMemberTests {
    @Test func replacingNode3ByNode4UnderLoadLosesNothing() async throws {
        try await LocalSchedulerTrio.with(binary: builtJunctionBinary()) { try await run($0) }
    }

    /// A member that was down while node 3 was replaced by node 4 comes back knowing only the old
    /// membership, and node 4, which its config file does not list, leads. It must follow node
    /// 4, answer it (node 4 names its address in heartbeats and vote requests) and vote for it:
    /// with the third voter gone, the group needs exactly that.
    @Test func aMemberThatMissedTheReplacementFollowsTheNewcomer() async throws {
        try await LocalSchedulerTrio.with(binary: builtJunctionBinary()) { trio in
            for id: UInt64 in 1...3 { try await trio.start(id) }
            let leader = try await trio.waitForLeader(among: [1, 2, 3])
            let lagging: UInt64 = leader == 1 ? 2 : 1
            let other: UInt64 = 3 - lagging // the other of 1 and 2
            try await trio.register("e0", at: leader)

            await trio.signal(lagging, SIGKILL)
            try await trio.startNewMember()
            _ = try await trio.ctlSucceeding(["replace-member", "--old", "3", "--new", "4", "--address", "127.0.0.1:\(trio.ports[4]!)"])
            await trio.signal(3, SIGKILL)
            // Node 4 leads, and the other node goes: node 4 and the lagging node are what is left.
            let now = try await trio.waitForLeader(among: [other, 4])
            await trio.signal(other, now == other ? SIGTERM : SIGKILL) // SIGTERM: hands over to 4
            try await trio.start(lagging)

            let elected = try await trio.waitForLeader(among: [lagging, 4], within: .seconds(15))
            try await trio.register("e1", at: elected) // commits only with both
            let seen = try #require(await trio.status(lagging))
            #expect(seen.members.map(\.id) == [1, 2, 4], "the lagging node learned the replacement: \(seen.members.map(\.id))")
            print("a member that missed the replacement: node \(elected) leads with it; it holds members \(seen.members.map(\.id))")
        }
    }

    /// A `schedule` call retried at whichever node leads until assigned; false if not within 3 s,
    /// nil if the load was stopped first (not counted).
    private static func scheduleSomewhere(_ trio: LocalSchedulerTrio, _ n: UInt64, nodes: [UInt64]) async -> Bool? {
        let deadline = ContinuousClock.now + .seconds(3)
        var candidates = nodes
        while ContinuousClock.now < deadline {
            if Task.isCancelled { return nil }
            for id in candidates {
                guard let connection = try? await trio.connect(id) else { continue }
                defer { connection.close() }
                let reply = try? await connection.call(
                    .scheduleRequest(ScheduleRequest(requestID: "r\(n)", model: "m", prefixHashes: [n, n + 1], promptTokens: 16)),
                    timeout: .milliseconds(500))
                if case .scheduleReply(let answer)? = reply, case .assigned(let assignment) = answer.outcome {
                    _ = try? await connection.call(.finishRequest(FinishRequest(requestID: "r\(n)", instanceID: assignment.instanceID, outcome: .ok)))
                    return true
                }
                if case .notLeader(let hint)? = reply, hint.leaderID != 0 {
                    candidates = [hint.leaderID] + nodes.filter { $0 != hint.leaderID }
                    break
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Polls `condition` every 20 ms; gives up after 20 s (a bound for a hung group, not a timing target).
    private static func waitUntil(_ what: String, _ condition: () async -> Bool) async throws {
        let start = ContinuousClock.now
        while !(await condition()) {
            guard ContinuousClock.now - start < .seconds(20) else { throw WireError(.timeout, "never: \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    private func run(_ trio: LocalSchedulerTrio) async throws {
        for id: UInt64 in 1...3 { try await trio.start(id) }
        let leader = try await trio.waitForLeader(among: [1, 2, 3])
        try await trio.register("e0", at: leader)
        try await trio.register("e1", at: leader)

        // Load and a watch on every node's view of who leads which term, until cancelled.
        let counts = LoadCounts()
        let load = Task {
            var n: UInt64 = 0
            while !Task.isCancelled {
                n += 1
                if let answered = await Self.scheduleSomewhere(trio, n, nodes: [1, 2, 3, 4]) { await counts.add(answered) }
            }
        }
        let watch = Task {
            var leaders: [UInt64: Set<UInt64>] = [:]
            while !Task.isCancelled {
                for id: UInt64 in 1...4 {
                    if let s = await trio.status(id), s.raftState == "leader" { leaders[s.term, default: []].insert(id) }
                }
                try? await Task.sleep(for: .milliseconds(30))
            }
            return leaders
        }

        // The load is under way before the change (how many calls land during it depends on the
        // machine's speed, so that is printed, not required: every call is, by `lost == 0`).
        try await Self.waitUntil("the load is answered") { await counts.answered >= 5 }
        try await trio.startNewMember()
        let before = await counts.answered
        let printed = try await trio.ctlSucceeding(["replace-member", "--old", "3", "--new", "4", "--address", "127.0.0.1:\(trio.ports[4]!)"])
        #expect(printed.contains("promote 4: committed") && printed.contains("remove 3: committed"), "ctl printed: \(printed)")
        let during = await counts.answered - before
        let afterChange = await counts.answered
        try await Self.waitUntil("the new group answers the load") { await counts.answered > afterChange }

        // The group is 1, 2 and 4, all claimed; node 3 is out and may go.
        let now = try await trio.waitForLeader(among: [1, 2, 4])
        let status = try #require(await trio.status(now))
        #expect(status.members.map(\.id) == [1, 2, 4] && status.members.allSatisfy { !$0.learner && $0.claimedIncarnation != 0 })
        await trio.signal(3, SIGKILL)
        try await Task.sleep(for: .milliseconds(500))

        // Node 4 counts: with one of 1 and 2 gone, a change commits only with node 4's vote.
        let follower = try #require([UInt64(1), 2].first { $0 != now })
        await trio.signal(follower, SIGKILL)
        let survivor = try await trio.waitForLeader(among: [1, 2, 4].filter { $0 != follower }, within: .seconds(10))
        try await trio.register("e2", at: survivor)

        load.cancel()
        watch.cancel()
        await load.value
        let leaders = await watch.value
        let (answered, lost) = (await counts.answered, await counts.lost)
        print("replace-member under load: \(answered) schedule calls answered (\(during) while ctl ran), \(lost) lost; terms seen: \(leaders.keys.sorted())")
        #expect(lost == 0)
        #expect(leaders.allSatisfy { $0.value.count == 1 }, "two leaders in a term: \(leaders)")
    }
}

/// What the load saw: calls answered with an assignment, and calls never answered within 3 s.
private actor LoadCounts {
    var answered = 0
    var lost = 0
    func add(_ wasAnswered: Bool) { if wasAnswered { answered += 1 } else { lost += 1 } }
}
