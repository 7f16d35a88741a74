import Dispatch
import Raft
import Scheduler
import SchedulerCore
import Synchronization
import Testing

/// Memory storage whose writes can be held on the disk, as a slow fsync holds them: a held
/// write blocks its (storage) thread until the test lets it go. Counts writes that carry entries.
final class GatedStorage: RaftStorage, @unchecked Sendable {
    // Safe: `inner` is used only by the replica's one storage thread (and by `load` before it
    // starts); the gate and counters are behind their own lock, read and set by the test.
    private var inner = MemoryStorage()
    private struct Gate { var closed = false; var held = 0; var entryWrites: [Int] = [] }
    private let gate = Mutex(Gate())
    private let opened = DispatchSemaphore(value: 0)

    func close() { gate.withLock { $0.closed = true } }
    func open() {
        let held = gate.withLock { gate in
            gate.closed = false
            return gate.held
        }
        for _ in 0..<held { opened.signal() }
    }
    /// Writes blocked on the gate now.
    var held: Int { gate.withLock { $0.held } }
    /// The number of entries each write carried, for writes that carried any.
    var entryWrites: [Int] { gate.withLock { $0.entryWrites } }

    func load() -> PersistedState { inner.load() }

    func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) {
        let wait = gate.withLock { gate in
            if !entries.isEmpty { gate.entryWrites.append(entries.count) }
            if gate.closed { gate.held += 1 }
            return gate.closed
        }
        if wait {
            opened.wait()
            gate.withLock { $0.held -= 1 }
        }
        inner.persist(hardState: hardState, entries: entries, snapshot: snapshot)
    }

    func saveCompactionSnapshot(_ snapshot: Snapshot) { inner.saveCompactionSnapshot(snapshot) }
}

/// A replica's writes run on a thread of their own: decisions go on while the disk is slow,
/// and what arrives meanwhile is written together (group commit).
@Suite(.timeLimit(.minutes(2))) struct StorageWriterTests {
    struct GatedTrio {
        let network = LocalNetwork()
        var replicas: [NodeID: SchedulerReplica] = [:]
        var storages: [NodeID: GatedStorage] = [:]

        init() throws {
            for id: NodeID in 1...3 {
                let storage = GatedStorage()
                storages[id] = storage
                var config = RaftConfig(id: id, voters: [1, 2, 3])
                config.randomSeed = id * 7919
                let replica = try SchedulerReplica(config: config, storage: storage, transport: network)
                replicas[id] = replica
                network.attach(replica, as: id)
            }
        }

        func electLeader() async throws -> NodeID {
            for _ in 0..<2_000 {
                for (id, replica) in replicas where await replica.isLeader { return id }
                for replica in replicas.values { try await replica.tick() }
                try await Task.sleep(for: .milliseconds(2))
            }
            throw ReplicaError.notLeader(leader: nil)
        }

        func waitUntil(_ what: String, _ done: () async -> Bool) async throws {
            // Bounded only against a hang; each step is a state change the test causes.
            for _ in 0..<10_000 {
                if await done() { return }
                try await Task.sleep(for: .milliseconds(1))
            }
            Issue.record("never: \(what)")
        }
    }

    static func register(_ id: String) -> SchedulerCommand {
        .upsertInstance(InstanceRecord(id: id, endpointURL: "http://127.0.0.1:9000", model: "m", kvCapacityTokens: 64_000))
    }

    @Test func theStateIsReadWhileAWriteIsHeldOnTheDisk() async throws {
        let trio = try GatedTrio()
        let leaderID = try await trio.electLeader()
        let leader = trio.replicas[leaderID]!
        _ = try await leader.propose(Self.register("e-1"))
        let disk = trio.storages[leaderID]!
        disk.close()
        let pending = Task { try await leader.propose(Self.register("e-2")) }
        try await trio.waitUntil("the leader's write is held") { disk.held == 1 }
        // With the write on the loop, none of these would return until the disk did.
        let (leadership, state) = await leader.leadershipAndState
        #expect(leadership.isLeader && leadership.isCurrent)
        #expect(state.instances.count == 1)
        try await leader.tick()
        disk.open()
        #expect(try await pending.value == .registryChanged(version: 2))
        #expect(await leader.state.instances.count == 2)
    }

    @Test func whatArrivesDuringAWriteIsWrittenTogetherInTheNext() async throws {
        let trio = try GatedTrio()
        let leaderID = try await trio.electLeader()
        let leader = trio.replicas[leaderID]!
        _ = try await leader.propose(Self.register("e-0"))
        let disk = trio.storages[leaderID]!
        let before = disk.entryWrites.count
        disk.close()
        let first = Task { try await leader.propose(Self.register("e-1")) }
        try await trio.waitUntil("the first write is held") { disk.held == 1 }
        let rest = (2...50).map { index in Task { try await leader.propose(Self.register("e-\(index)")) } }
        try await trio.waitUntil("49 proposals wait behind it") { await leader.waitingProposals == 49 }
        disk.open()
        _ = try await first.value
        for task in rest { _ = try await task.value }
        #expect(await leader.state.instances.count == 51)
        // One write for the held entry, one for the 49 that waited: not 49 fsyncs.
        #expect(Array(disk.entryWrites.dropFirst(before)) == [1, 49])
    }
}

@Suite struct LeadershipCurrencyTests {
    /// Whether `schedule` is answered at once (on the loop) or waits for the new leader to catch
    /// up. Entries of its own term that are committed while a write holds their application back
    /// must not count as "not current": that sent every call during a write down the slow path.
    @Test func aLeaderIsCurrentOnceItHasAppliedAnEntryOfItsOwnTerm() {
        typealias L = SchedulerReplica.Leadership
        #expect(L.isCurrent(isLeader: true, term: 7, appliedTerm: 7))
        #expect(!L.isCurrent(isLeader: true, term: 7, appliedTerm: 6), "entries of earlier leaders may still be unapplied")
        #expect(!L.isCurrent(isLeader: true, term: 7, appliedTerm: nil))
        #expect(!L.isCurrent(isLeader: false, term: 7, appliedTerm: 7))
    }
}
