import Foundation
import ProcessHarness
import Testing
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// A follower's data directory is wiped and the node restarted under the same id: it copies the
/// log again, but it never votes or campaigns, so with the leader gone the group has no
/// quorum and elects nobody, rather than electing a node that may lack committed entries.
@Suite(.serialized) struct WipedDiskTests {
    @Test func aWipedFollowerDoesNotVoteUntilReplaced() async throws {
        try await LocalSchedulerTrio.with(binary: builtJunctionBinary()) { try await run($0) }
    }

    /// Polls `condition` every 50 ms for up to `limit`.
    private func eventually(_ what: String, within limit: Duration = .seconds(10), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw WireError(.unavailable, "not within \(limit): \(what)")
    }

    private func run(_ trio: LocalSchedulerTrio) async throws {
        for id: UInt64 in 1...3 { try await trio.start(id) }
        let leader = try await trio.waitForLeader(among: [1, 2, 3])
        try await eventually("the leader claims all three") {
            await trio.status(leader)?.members.allSatisfy { $0.claimedIncarnation != 0 } == true
        }
        let claimed = try #require(await trio.status(leader)).members
        try await trio.register("e0", at: leader)
        let (wiped, other) = leader == 1 ? (UInt64(2), UInt64(3)) : (leader == 2 ? (3, 1) : (1, 2))
        let oldIncarnation = try #require(claimed.first { $0.id == wiped }).claimedIncarnation

        await trio.signal(wiped, SIGKILL)
        try FileManager.default.removeItem(atPath: trio.directory + "/data-\(wiped)")
        try await trio.start(wiped)
        // The leader hears the new incarnation and replicates to it from scratch.
        try await eventually("the wiped node copies the log again") {
            guard let l = await trio.status(leader), let w = await trio.status(wiped) else { return false }
            return w.incarnation != oldIncarnation && w.commitIndex == l.commitIndex && w.commitIndex > 0
        }
        let seen = try #require(await trio.status(leader)?.members.first { $0.id == wiped })
        #expect(seen.claimedIncarnation == oldIncarnation)
        #expect(seen.heardIncarnation != oldIncarnation && seen.heardIncarnation != 0)
        let printed = try await trio.ctl(["status", "--scheduler", "127.0.0.1:\(trio.ports[leader]!)"])
        #expect(printed.contains("NOT VOTING"), "ctl status says so: \(printed)")

        // Without the leader, the other follower and the wiped node are two of three, but the
        // wiped node's vote does not count: nobody is elected, for as long as we watch (twenty
        // election timeouts of 0.5-1 s).
        await trio.signal(leader, SIGKILL)
        let watchUntil = ContinuousClock.now + .seconds(10)
        var terms: [UInt64: UInt64] = [:]
        while ContinuousClock.now < watchUntil {
            for id in [wiped, other] {
                guard let s = await trio.status(id) else { continue }
                #expect(s.raftState != "leader", "node \(id) was elected with a wiped disk's vote")
                terms[id] = s.term
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        // It found the others holding data, so it knew it was joining, not starting a group.
        let wipedLog = try String(contentsOfFile: trio.directory + "/scheduler-\(wiped).log", encoding: .utf8)
        #expect(wipedLog.contains("joining a scheduler group that holds data"))

        // The old leader returns: with it the group has a quorum again.
        try await trio.start(leader)
        let back = try await trio.waitForLeader(among: [leader, other], within: .seconds(10))
        #expect(back != wiped)
        print("wiped disk: no leader for 10 s without the old leader (terms \(terms)); node \(back) leads once it returns")
    }
}
