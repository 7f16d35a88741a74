import Routing
import SchedulerCore
import Testing

private func record(_ id: String, url: String? = nil, kv: Int? = nil) -> InstanceRecord {
    InstanceRecord(id: id, endpointURL: url ?? "http://127.0.0.1:80\(id.suffix(2))", model: "m", engine: .vllm, kvCapacityTokens: kv)
}

@Suite struct SchedulerStateMachineTests {
    @Test func registrationIsIdempotentAndVersioned() {
        var state = SchedulerStateMachine()
        #expect(state.apply(.upsertInstance(record("e1"))) == .registryChanged(version: 1))
        #expect(state.apply(.upsertInstance(record("e1"))) == .applied)
        #expect(state.apply(.upsertInstance(record("e2"))) == .registryChanged(version: 2))
        var moved = record("e1")
        moved.model = "other"
        #expect(state.apply(.upsertInstance(moved)) == .registryChanged(version: 3))
        #expect(state.sortedInstances.map(\.id) == ["e1", "e2"])
        #expect(state.apply(.removeInstance(id: "e2")) == .registryChanged(version: 4))
        #expect(state.apply(.removeInstance(id: "e2")) == .unknownInstance("e2"))
        #expect(state.apply(.upsertInstance(InstanceRecord(id: "", endpointURL: "x", model: "m"))) == .rejected("an instance needs an id"))
        #expect(state.registryVersion == 4)
    }

    @Test func anEngineLoadingAnAdapterChangesTheRegistryButKeepsItsCache() {
        var state = SchedulerStateMachine()
        _ = state.apply(.upsertInstance(record("e1")))
        _ = state.apply(.affinity([AffinityRecord(instanceID: "e1", hashes: [1, 2, 3])]))
        var loaded = record("e1")
        loaded.adapters = ["sql"]
        #expect(state.apply(.upsertInstance(loaded)) == .registryChanged(version: 2))
        #expect(state.instances["e1"]?.serves("sql") == true && state.instances["e1"]?.servedModels == ["m", "sql"])
        #expect(state.affinity.entryCount(of: "e1") == 3)
    }

    @Test func stateChangesCarryReasonAndTimeAndReviveWithAnEmptyCache() {
        var state = SchedulerStateMachine()
        _ = state.apply(.upsertInstance(record("e1")))
        _ = state.apply(.affinity([AffinityRecord(instanceID: "e1", hashes: [1, 2, 3])]))
        #expect(state.affinity.matches(for: [1, 2, 3]) == ["e1": 3])
        #expect(state.apply(.setInstanceState(id: "e1", state: .draining, reason: "operator", atUnixMilliseconds: 5)) == .registryChanged(version: 2))
        #expect(state.apply(.setInstanceState(id: "e1", state: .draining, reason: "again", atUnixMilliseconds: 6)) == .applied)
        #expect(state.affinity.matches(for: [1, 2, 3]) == ["e1": 3], "draining keeps the cache")
        _ = state.apply(.setInstanceState(id: "e1", state: .down, reason: "missed heartbeats", atUnixMilliseconds: 7))
        #expect(state.instances["e1"]?.stateReason == "missed heartbeats")
        #expect(state.instances["e1"]?.stateChangedUnixMilliseconds == 7)
        _ = state.apply(.setInstanceState(id: "e1", state: .up, reason: "recovered", atUnixMilliseconds: 9))
        #expect(state.affinity.matches(for: [1, 2, 3]).isEmpty, "an engine back from down has an empty cache")
        #expect(state.apply(.setInstanceState(id: "nope", state: .up, reason: "", atUnixMilliseconds: 1)) == .unknownInstance("nope"))
    }

    @Test func affinityCapacityComesFromKVCapacity() {
        var state = SchedulerStateMachine()
        _ = state.apply(.upsertInstance(record("e1", kv: 6_400)))
        #expect(state.affinity.capacity(of: "e1") == 100)  // 64 tokens a chunk
        _ = state.apply(.affinity([AffinityRecord(instanceID: "e1", hashes: Array(1...500))]))
        #expect(state.affinity.entryCount(of: "e1") == 100)
        var policy = PolicyConfiguration()
        policy.chunkTokens = 128
        _ = state.apply(.setPolicy(policy))
        #expect(state.affinity.capacity(of: "e1") == 50)
        #expect(state.affinity.entryCount(of: "e1") == 50)
        _ = state.apply(.affinity([AffinityRecord(instanceID: "ghost", hashes: [1])]))
        #expect(state.affinity.instanceIDs == ["e1"], "records for unknown instances are dropped")
    }

    /// A capacity is what an agent said: the largest, at one token a chunk, must neither trap in
    /// the replicated apply (every scheduler would crash, again at each restart) nor size the table.
    @Test func anAbsurdKVCapacityIsBounded() {
        var state = SchedulerStateMachine()
        var policy = PolicyConfiguration()
        policy.chunkTokens = 1
        _ = state.apply(.setPolicy(policy))
        _ = state.apply(.upsertInstance(record("huge", kv: .max)))
        #expect(state.affinity.capacity(of: "huge") == SchedulerStateMachine.maxAffinityCapacity)
        policy.chunkTokens = .infinity
        _ = state.apply(.setPolicy(policy))
        #expect(state.affinity.capacity(of: "huge") == 1)
    }

    @Test func aSnapshotRebuildsAnEqualStateThatEvolvesIdentically() {
        var state = SchedulerStateMachine()
        for index in 0..<5 { _ = state.apply(.upsertInstance(record("e\(index)", kv: 64 * 40))) }
        var hash: UInt64 = 1
        for round in 0..<200 {
            let chain = (0..<8).map { _ -> UInt64 in hash = hash &* 6_364_136_223_846_793_005 &+ 1; return hash }
            _ = state.apply(.affinity([AffinityRecord(instanceID: "e\(round % 5)", hashes: chain)]))
        }
        _ = state.apply(.setInstanceState(id: "e3", state: .down, reason: "x", atUnixMilliseconds: 1))
        var restored = SchedulerStateMachine(snapshot: state.snapshot)
        #expect(restored == state)
        let more: [SchedulerCommand] = [
            .affinity([AffinityRecord(instanceID: "e1", hashes: [7, 8, 9])]), .removeInstance(id: "e0"),
            .setInstanceState(id: "e3", state: .up, reason: "y", atUnixMilliseconds: 2),
        ]
        for command in more { #expect(restored.apply(command) == state.apply(command)) }
        #expect(restored == state)
        #expect(restored.snapshot == state.snapshot)
    }
}
