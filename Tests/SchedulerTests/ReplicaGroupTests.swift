import Raft
import Routing
import Scheduler
import SchedulerCore
import Synchronization
import Testing

/// Delivers Raft messages between in-process replicas, each delivery its own task (so messages
/// may be reordered, as on a network); a node marked down neither sends nor receives.
final class LocalNetwork: RaftTransport {
    private let replicas = Mutex<[NodeID: SchedulerReplica]>([:])
    private let down = Mutex<Set<NodeID>>([])

    func attach(_ replica: SchedulerReplica, as id: NodeID) { replicas.withLock { $0[id] = replica } }
    func setDown(_ id: NodeID, _ isDown: Bool) { down.withLock { if isDown { $0.insert(id) } else { $0.remove(id) } } }

    func send(_ message: Raft.Message) {
        let blocked = down.withLock { $0.contains(message.from) || $0.contains(message.to) }
        guard !blocked, let target = replicas.withLock({ $0[message.to] }) else { return }
        Task { try? await target.receive(message) }
    }
}

/// A storage whose durable state outlives the replica that used it, to restart from.
final class SharedMemoryStorage: RaftStorage, @unchecked Sendable {
    // Safe: used by one replica actor at a time (a replica is stopped before its successor starts).
    var inner = MemoryStorage()
    func load() -> PersistedState { inner.load() }
    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) { inner.persist(hardState: hardState, entries: entries, snapshot: snapshot) }
    func saveCompactionSnapshot(_ snapshot: Snapshot) { inner.saveCompactionSnapshot(snapshot) }
}

struct Trio {
    let network = LocalNetwork()
    var replicas: [NodeID: SchedulerReplica] = [:]
    var storages: [NodeID: SharedMemoryStorage] = [:]

    init(compactEvery: UInt64 = 10_000) throws {
        for id: NodeID in 1...3 {
            let storage = SharedMemoryStorage()
            storages[id] = storage
            try start(id, compactEvery: compactEvery)
        }
    }

    mutating func start(_ id: NodeID, compactEvery: UInt64 = 10_000) throws {
        var config = RaftConfig(id: id, voters: [1, 2, 3])
        config.randomSeed = id * 7919
        let replica = try SchedulerReplica(config: config, storage: storages[id]!, transport: network, compactEvery: compactEvery)
        replicas[id] = replica
        network.attach(replica, as: id)
        network.setDown(id, false)
    }

    /// Ticks every live replica until `done` holds (or fails after `limit` rounds).
    func run(until done: () async -> Bool, limit: Int = 2_000) async throws {
        for _ in 0..<limit {
            if await done() { return }
            for replica in replicas.values { try await replica.tick() }
            try await Task.sleep(for: .milliseconds(2))
        }
        Issue.record("condition not reached within \(limit) rounds")
    }

    func leader() async -> NodeID? {
        for (id, replica) in replicas where await replica.isLeader { return id }
        return nil
    }
}

@Suite struct ReplicaGroupTests {
    static func register(_ id: String) -> SchedulerCommand {
        .upsertInstance(InstanceRecord(id: id, endpointURL: "http://127.0.0.1:9\(id.suffix(3))", model: "m", kvCapacityTokens: 64 * 1000))
    }

    @Test func aLeaderIsElectedAndCommandsReachEveryReplica() async throws {
        let trio = try Trio()
        try await trio.run { await trio.leader() != nil }
        let leaderID = try #require(await trio.leader())
        let leader = trio.replicas[leaderID]!
        #expect(try await leader.propose(Self.register("e-001")) == .registryChanged(version: 1))
        #expect(try await leader.propose(Self.register("e-001")) == .applied)
        let follower = trio.replicas.first { $0.key != leaderID }!.value
        // A follower names the leader once it has heard from it (a heartbeat away, on a loaded machine longer).
        try await trio.run { await follower.status.leader == leaderID }
        await #expect(throws: ReplicaError.notLeader(leader: leaderID)) { try await follower.propose(Self.register("e-002")) }
        try await trio.run {
            for replica in trio.replicas.values where await replica.state.instances.count != 1 { return false }
            return true
        }
        try await leader.linearizableBarrier()
    }

    /// An entry too large for any frame to carry is refused before it enters the log, so
    /// replication never wedges on it; the group goes on.
    @Test func anOversizedEntryIsRefusedAndNothingIsProposed() async throws {
        let trio = try Trio()
        try await trio.run { await trio.leader() != nil }
        let leader = trio.replicas[try #require(await trio.leader())]!
        let before = await leader.status.lastIndex
        let huge = SchedulerCommand.affinity([AffinityRecord(instanceID: "e-001", hashes: (0..<200_000).map { UInt64.max - UInt64($0) })])
        await #expect(throws: ReplicaError.self) { _ = try await leader.propose(huge) }
        #expect(await leader.status.lastIndex == before)
        #expect(try await leader.propose(Self.register("e-001")) == .registryChanged(version: 1))
    }

    /// The point of a replicated scheduler: after the leader dies, the new one knows the same
    /// instances and the same prefix affinity, so the same prompt goes to the same instance.
    @Test func afterLeaderFailoverTheRegistryAndAffinityAreIntact() async throws {
        var trio = try Trio(compactEvery: 8)
        try await trio.run { await trio.leader() != nil }
        let first = try #require(await trio.leader())
        for index in 1...4 { _ = try await trio.replicas[first]!.propose(Self.register("e-00\(index)")) }
        let prompt: [UInt64] = Array(1000...1031)
        _ = try await trio.replicas[first]!.propose(.affinity([AffinityRecord(instanceID: "e-003", hashes: prompt)]))
        for round in 0..<12 {  // enough entries to compact the log at least once
            _ = try await trio.replicas[first]!.propose(.affinity([AffinityRecord(instanceID: "e-00\(round % 4 + 1)", hashes: [UInt64(round)])]))
        }
        let request = RoutingRequest(model: "m", prefixHashes: prompt, promptTokens: 2048)
        func decide(_ state: SchedulerStateMachine) -> RoutingDecision {
            var router = Router(configuration: state.policy ?? PolicyConfiguration())
            let instances = state.sortedInstances.map { RoutingInstance(id: $0.id, model: $0.model) }
            return router.decide(request, instances: instances, affinity: state.affinity)
        }
        let before = decide(await trio.replicas[first]!.state)
        #expect(before == .assign(instance: "e-003", cachedChunks: 32))

        trio.network.setDown(first, true)
        await trio.replicas[first]!.stop()
        let survivors = trio.replicas.filter { $0.key != first }
        trio.replicas = survivors
        try await trio.run { if let leader = await trio.leader(), leader != first { return true }; return false }
        let second = try #require(await trio.leader())
        let newLeader = trio.replicas[second]!
        try await newLeader.linearizableBarrier()
        #expect(await newLeader.state.instances.count == 4)
        #expect(decide(await newLeader.state) == before)
        #expect(try await newLeader.propose(Self.register("e-005")) == .registryChanged(version: 5))

        // The old leader restarts from its storage and catches up with what it missed.
        try trio.start(first, compactEvery: 8)
        try await trio.run { await trio.replicas[first]!.state.instances.count == 5 }
        #expect(await trio.replicas[first]!.state == newLeader.state)
    }

    @Test func oneReplicaAloneCannotDecide() async throws {
        var trio = try Trio()
        try await trio.run { await trio.leader() != nil }
        let leaderID = try #require(await trio.leader())
        let lone = trio.replicas.keys.first { $0 != leaderID }!
        for id in trio.replicas.keys where id != lone { trio.network.setDown(id, true) }
        trio.replicas = trio.replicas.filter { $0.key == lone }
        // With check-quorum and pre-vote, the isolated node never becomes leader.
        for _ in 0..<300 {
            try await trio.replicas[lone]!.tick()
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(await trio.replicas[lone]!.isLeader == false)
        await #expect(throws: ReplicaError.self) { try await trio.replicas[lone]!.propose(Self.register("e-009")) }
    }
}
