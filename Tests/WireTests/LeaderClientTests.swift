import Logging
import Synchronization
import Testing
import Wire

/// A scheduler that answers status at once (naming itself) and never answers `schedule` calls
/// for model "slow"; with `silent`, it answers nothing at all (a frozen process).
private final class SlowCallService: WireService {
    let nodeID: UInt64
    let silent: Bool

    init(nodeID: UInt64, silent: Bool = false) {
        self.nodeID = nodeID
        self.silent = silent
    }

    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
        if silent { try await Task.sleep(for: .seconds(600)) }
        switch request {
        case .scheduleRequest(let schedule) where schedule.model == "slow":
            try await Task.sleep(for: .seconds(600))
            throw WireError(.internal, "unreachable")
        case .statusRequest:
            return .statusReply(StatusReply(nodeID: nodeID, leaderID: nodeID, term: 1, raftState: "leader"))
        default:
            throw WireError(.unimplemented, "not served")
        }
    }

    func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws {}
}

/// A follower that names node `leader` at `leaderAddress`, and refuses every other call as
/// a follower does.
private final class FollowerService: WireService {
    let nodeID: UInt64
    let leader: (id: UInt64, address: String)

    init(nodeID: UInt64, leader: (id: UInt64, address: String)) {
        self.nodeID = nodeID
        self.leader = leader
    }

    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
        switch request {
        case .statusRequest:
            return .statusReply(StatusReply(
                nodeID: nodeID, leaderID: leader.id, term: 1, raftState: "follower",
                members: [MemberStatus(id: nodeID, address: "127.0.0.1:1"), MemberStatus(id: leader.id, address: leader.address)]))
        default:
            return .notLeader(NotLeader(leaderID: leader.id, leaderAddress: leader.address, term: 1))
        }
    }

    func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws {}
}

/// The leader-following client moves to another scheduler only when the one it uses is gone
/// or silent, never for one slow call on a connection that keeps answering: moving closes the
/// connection and fails every other call on it (a gateway would fall back for all of them).
@Suite(.timeLimit(.minutes(1))) struct LeaderClientTests {
    private func withTwoSchedulers(
        firstSilent: Bool = false, _ body: @Sendable (LeaderClient, [LeaderClient.Target]) async throws -> Void
    ) async throws {
        let configuration = testConfiguration(role: .scheduler, nodeID: "1")
        try await withServer(service: SlowCallService(nodeID: 1, silent: firstSilent), configuration: configuration) { first in
            try await withServer(service: SlowCallService(nodeID: 2), configuration: configuration) { second in
                let targets = [first.port, second.port].map { LeaderClient.Target(host: "127.0.0.1", port: $0) }
                let client = LeaderClient(schedulers: targets, configuration: testConfiguration(), logger: Logger(label: "test"))
                let running = Task { await client.run() }
                defer { running.cancel() }
                try await body(client, targets)
            }
        }
    }

    private static func statusNode(_ reply: Envelope.Body) -> UInt64? {
        if case .statusReply(let status) = reply { status.nodeID } else { nil }
    }

    @Test func oneSlowCallKeepsTheConnectionAndItsOtherCalls() async throws {
        try await withTwoSchedulers { client, targets in
            #expect(Self.statusNode(try await client.call(.statusRequest(StatusRequest()))) == 1)
            let connection = try #require(client.liveConnection)
            let finished = Mutex(false)
            let slow = Task {
                defer { finished.withLock { $0 = true } }
                return try await client.call(
                    .scheduleRequest(ScheduleRequest(requestID: "r", model: "slow")), attempt: .seconds(1), deadline: .seconds(1))
            }
            // Other calls go on being answered on the same connection while the slow one waits.
            var answered = 0
            while !finished.withLock({ $0 }) {
                #expect(Self.statusNode(try await connection.call(.statusRequest(StatusRequest()), timeout: .seconds(5))) == 1)
                answered += 1
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(answered > 0)
            let error = await #expect(throws: WireError.self) { _ = try await slow.value }
            #expect(error?.code == .unavailable)
            #expect(await client.target == targets[0])
            #expect(client.liveConnection === connection)
            #expect(connection.isActive)
            #expect(Self.statusNode(try await client.call(.statusRequest(StatusRequest()))) == 1)
        }
    }

    @Test func aSilentSchedulerIsLeftForTheNext() async throws {
        try await withTwoSchedulers(firstSilent: true) { client, targets in
            let reply = try await client.call(.statusRequest(StatusRequest()), attempt: .milliseconds(300), deadline: .seconds(20))
            #expect(Self.statusNode(reply) == 2)
            #expect(await client.target == targets[1])
        }
    }

    /// The scheduler first in the list is on a host that is cut off: a dial to it hangs (here
    /// for a connect timeout of a minute, so only one path can pass). The client asks every
    /// scheduler meanwhile, follows the leader they name, and abandons the hanging dial.
    /// Any scheduler may answer a status call, and on a loaded machine (a fresh clone's CI run)
    /// the first call was once answered by the follower: what is promised is an answer well
    /// before the dial's minute, and the client settled on the leader.
    @Test func aDialToACutOffHostIsAbandonedForTheLeaderTheOthersName() async throws {
        let blackhole = try BlackholeListener()
        defer { blackhole.close() }
        let cutOff = blackhole.port
        let configuration = testConfiguration(role: .scheduler, nodeID: "1")
        try await withServer(service: SlowCallService(nodeID: 3), configuration: configuration) { leader in
            let follower = FollowerService(nodeID: 2, leader: (3, "127.0.0.1:\(leader.port)"))
            try await withServer(service: follower, configuration: configuration) { second in
                let targets = [cutOff, second.port, leader.port].map { LeaderClient.Target(host: "127.0.0.1", port: $0) }
                var patient = testConfiguration()
                patient.connectTimeout = .seconds(60)
                let client = LeaderClient(schedulers: targets, configuration: patient, logger: Logger(label: "test"))
                let running = Task { await client.run() }
                defer { running.cancel() }
                let reply = try await client.call(.statusRequest(StatusRequest()), attempt: .milliseconds(300), deadline: .seconds(20))
                #expect([2, 3].contains(Self.statusNode(reply)))
                // Asked again, the two that answer settle it without waiting out the third's dial
                // (which would take the whole 40 s budget; settling takes milliseconds).
                let started = ContinuousClock.now
                #expect(await client.discoverLeader(within: .seconds(40)) == targets[2])
                #expect(ContinuousClock.now - started < .seconds(20))
                #expect(await client.target == targets[2])
                #expect(Self.statusNode(try await client.call(.statusRequest(StatusRequest()), deadline: .seconds(20))) == 3)
            }
        }
    }

    /// A dial slower than each call's budget (here 600 ms against 100 ms) still completes: the
    /// calls that give up meanwhile leave it to finish rather than abandon it for the next
    /// scheduler, and a later call uses it. Abandoning it, no dial would ever complete.
    @Test func aDialSlowerThanACallsBudgetIsLeftToFinish() async throws {
        let configuration = testConfiguration(role: .scheduler, nodeID: "1")
        try await withServer(service: SlowCallService(nodeID: 1), configuration: configuration) { first in
            try await withServer(service: SlowCallService(nodeID: 2), configuration: configuration) { second in
                let relays = [try await SlowHandshakeRelay.start(to: first.port, delay: .milliseconds(600)),
                              try await SlowHandshakeRelay.start(to: second.port, delay: .milliseconds(600))]
                defer { relays.forEach { $0.close() } }
                let client = LeaderClient(
                    schedulers: relays.map { LeaderClient.Target(host: "127.0.0.1", port: $0.port) }, configuration: testConfiguration(),
                    logger: Logger(label: "test"))
                let running = Task { await client.run() }
                defer { running.cancel() }
                var answered: Envelope.Body?
                for _ in 0..<200 where answered == nil {
                    answered = try? await client.call(.statusRequest(StatusRequest()), attempt: .milliseconds(100), deadline: .milliseconds(100))
                }
                #expect(answered.flatMap(Self.statusNode) != nil, "no call was ever answered: every dial was abandoned")
            }
        }
    }
}
