import Raft
import Scheduler
import SchedulerCore
import Synchronization
import Testing

/// Memory storage that fails the next operation of a chosen kind, as a full disk or a failing
/// fsync would: the write is not made and the call throws.
final class FaultyStorage: RaftStorage, @unchecked Sendable {
    // Safe: `inner` is used by one replica actor at a time (the only caller of these methods);
    // the armed fault is behind its own lock because the test arms it from outside the actor.
    enum Operation: Sendable, CaseIterable { case hardState, entries, installedSnapshot, compaction }

    struct Fault: Error, CustomStringConvertible {
        let operation: Operation
        var description: String { "raft storage: write /data/wal/0000000000000001.wal: No space left on device (\(operation))" }
    }

    private var inner = MemoryStorage()
    private let armed = Mutex<Operation?>(nil)

    func arm(_ operation: Operation) { armed.withLock { $0 = operation } }

    private func check(_ operation: Operation) throws {
        try armed.withLock {
            guard $0 == operation else { return }
            $0 = nil
            throw Fault(operation: operation)
        }
    }

    func load() -> PersistedState { inner.load() }

    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
        if snapshot != nil { try check(.installedSnapshot) }
        if hardState != nil { try check(.hardState) }
        if !entries.isEmpty { try check(.entries) }
        inner.persist(hardState: hardState, entries: entries, snapshot: snapshot)
    }

    func saveCompactionSnapshot(_ snapshot: Snapshot) throws {
        try check(.compaction)
        inner.saveCompactionSnapshot(snapshot)
    }
}

/// The storage faults each replica reported, in order.
final class FaultReports: Sendable {
    private let reports = Mutex<[NodeID: [String]]>([:])
    func add(_ why: String, from id: NodeID) { reports.withLock { $0[id, default: []].append(why) } }
    func of(_ id: NodeID) -> [String] { reports.withLock { $0[id] ?? [] } }
}

/// A trio whose storages can fail, recording every storage fault each replica reports.
struct FaultyTrio {
    let network = LocalNetwork()
    var replicas: [NodeID: SchedulerReplica] = [:]
    var storages: [NodeID: FaultyStorage] = [:]
    let reported = FaultReports()

    init(compactEvery: UInt64 = 10_000) throws {
        for id: NodeID in 1...3 {
            let storage = FaultyStorage()
            storages[id] = storage
            var config = RaftConfig(id: id, voters: [1, 2, 3])
            config.randomSeed = id * 7919
            let replica = try SchedulerReplica(
                config: config, storage: storage, transport: network, compactEvery: compactEvery,
                onStorageFailure: { [reported] why in reported.add(why, from: id) })
            replicas[id] = replica
            network.attach(replica, as: id)
        }
    }

    /// Ticks every replica that has not failed until `done` holds.
    func run(until done: () async -> Bool, limit: Int = 2_000) async throws {
        for _ in 0..<limit {
            if await done() { return }
            for replica in replicas.values where await replica.storageFailure == nil {
                do {
                    try await replica.tick()
                } catch {
                    // The storage thread can report the armed fault between the check above and
                    // this tick: that is the fault under test, not a failure of the harness.
                    guard await replica.storageFailure != nil else { throw error }
                }
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        Issue.record("condition not reached within \(limit) rounds")
    }

    func leader() async -> NodeID? {
        for (id, replica) in replicas where await replica.isLeader { return id }
        return nil
    }

    func reports(_ id: NodeID) -> [String] { reported.of(id) }
}

@Suite struct StorageFaultTests {
    static func register(_ id: String) -> SchedulerCommand {
        .upsertInstance(InstanceRecord(id: id, endpointURL: "http://127.0.0.1:9000", model: "m", kvCapacityTokens: 64_000))
    }

    /// What every fault must leave: the replica reported it once, naming the file and the
    /// error; it leads nothing and takes no proposal; its tick throws; and the other two go on
    /// with a leader of their own that has every entry committed before the fault.
    func expectFailStopped(_ trio: FaultyTrio, _ failed: NodeID, committed: Int) async throws {
        let replica = trio.replicas[failed]!
        #expect(trio.reports(failed).count == 1)
        #expect(trio.reports(failed).first?.contains("No space left on device") == true)
        #expect(await replica.storageFailure != nil)
        #expect(await replica.isLeader == false)
        #expect(await replica.leadership.isLeader == false)
        await #expect(throws: ReplicaError.self) { try await replica.tick() }
        await #expect(throws: ReplicaError.self) { _ = try await replica.propose(Self.register("e-after")) }
        trio.network.setDown(failed, true)
        try await trio.run { if let leader = await trio.leader(), leader != failed { return true }; return false }
        let survivor = trio.replicas[try #require(await trio.leader())]!
        #expect(try await survivor.propose(Self.register("e-after")) == .registryChanged(version: UInt64(committed + 1)))
        #expect(await survivor.state.instances.count == committed + 1)
    }

    @Test func aLeaderWhoseEntriesCannotBeWrittenStopsAndTheOthersElectANewOne() async throws {
        let trio = try FaultyTrio()
        try await trio.run { await trio.leader() != nil }
        let leader = try #require(await trio.leader())
        _ = try await trio.replicas[leader]!.propose(Self.register("e-1"))
        trio.storages[leader]!.arm(.entries)
        await #expect(throws: ReplicaError.self) { _ = try await trio.replicas[leader]!.propose(Self.register("e-2")) }
        try await expectFailStopped(trio, leader, committed: 1)
    }

    @Test func aFollowerWhoseHardStateCannotBeWrittenStops() async throws {
        let trio = try FaultyTrio()
        try await trio.run { await trio.leader() != nil }
        let leader = try #require(await trio.leader())
        let follower = trio.replicas.keys.first { $0 != leader }!
        trio.storages[follower]!.arm(.hardState)
        // The commit index the next entry brings is part of the follower's hard state.
        _ = try await trio.replicas[leader]!.propose(Self.register("e-1"))
        try await trio.run { !trio.reports(follower).isEmpty }
        // The leader still has the third node: it goes on leading.
        #expect(try await trio.replicas[leader]!.propose(Self.register("e-2")) == .registryChanged(version: 2))
        try await expectFailStopped(trio, follower, committed: 2)
    }

    @Test func aLeaderWhoseCompactionSnapshotCannotBeSavedStops() async throws {
        let trio = try FaultyTrio(compactEvery: 4)
        try await trio.run { await trio.leader() != nil }
        let leader = try #require(await trio.leader())
        trio.storages[leader]!.arm(.compaction)
        var committed = 0
        for index in 1...8 {
            do {
                _ = try await trio.replicas[leader]!.propose(Self.register("e-\(index)"))
                committed += 1
            } catch {
                break
            }
        }
        try await trio.run { !trio.reports(leader).isEmpty }
        try await expectFailStopped(trio, leader, committed: committed)
    }

    @Test func aFollowerThatCannotInstallASnapshotStops() async throws {
        let trio = try FaultyTrio(compactEvery: 4)
        try await trio.run { await trio.leader() != nil }
        let leader = try #require(await trio.leader())
        let behind = trio.replicas.keys.first { $0 != leader }!
        trio.network.setDown(behind, true)
        // Enough entries that the leader compacts past what the absent follower has.
        for index in 1...10 { _ = try await trio.replicas[leader]!.propose(Self.register("e-\(index)")) }
        trio.storages[behind]!.arm(.installedSnapshot)
        trio.network.setDown(behind, false)
        try await trio.run { !trio.reports(behind).isEmpty }
        #expect(try await trio.replicas[leader]!.propose(Self.register("e-11")) == .registryChanged(version: 11))
        try await expectFailStopped(trio, behind, committed: 11)
    }
}
