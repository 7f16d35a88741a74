import Routing

/// The scheduler's replicated state: the instance registry, the policy and the prefix-affinity
/// table. Every Raft member applies the same committed commands in the same order, and so holds
/// the same state; a snapshot captures it whole. Pure: no clock, no I/O.
public struct SchedulerStateMachine: Sendable, Equatable {
    public private(set) var instances: [String: InstanceRecord] = [:]
    /// The policy an operator set through the log (`ctl set-policy`); until then nil, and each
    /// leader decides with the policy of its own config file (`llm_scheduler.policy`).
    public private(set) var policy: PolicyConfiguration?
    public private(set) var affinity = PrefixAffinityTable()
    /// Increases with every change to the registry; the instance-table subscription's version.
    public private(set) var registryVersion: UInt64 = 0

    public init() {}

    /// Instances sorted by id: the stable order the router and the subscribers see.
    /// Kept with every registry change rather than sorted per decision.
    public private(set) var sortedInstances: [InstanceRecord] = []

    public mutating func apply(_ command: SchedulerCommand) -> ApplyOutcome {
        switch command {
        case .upsertInstance(let record):
            guard !record.id.isEmpty else { return .rejected("an instance needs an id") }
            guard !record.model.isEmpty else { return .rejected("instance \(record.id) needs a model") }
            guard !record.endpointURL.isEmpty else { return .rejected("instance \(record.id) needs an endpoint URL") }
            let previous = instances[record.id]
            if let previous, previous.sameDescription(as: record) { return .applied }
            if let previous, previous.endpointURL != record.endpointURL || (previous.state == .down && record.state == .up) {
                // A different engine, or one coming back from down: its cache starts empty.
                affinity.remove(record.id)
            }
            instances[record.id] = record
            affinity.setCapacity(affinityCapacity(record), for: record.id)
            return registryChanged()
        case .setInstanceState(let id, let state, let reason, let at):
            guard var record = instances[id] else { return .unknownInstance(id) }
            guard record.state != state else { return .applied }
            if record.state == .down && state == .up { affinity.remove(id) }
            record.state = state
            record.stateReason = reason
            record.stateChangedUnixMilliseconds = at
            instances[id] = record
            if !affinity.instanceIDs.contains(id) { affinity.setCapacity(affinityCapacity(record), for: id) }
            return registryChanged()
        case .removeInstance(let id):
            guard instances.removeValue(forKey: id) != nil else { return .unknownInstance(id) }
            affinity.remove(id)
            return registryChanged()
        case .setPolicy(let configuration):
            policy = configuration
            for record in instances.values { affinity.setCapacity(affinityCapacity(record), for: record.id) }
            return .applied
        case .affinity(let records):
            for record in records where instances[record.instanceID] != nil {
                affinity.record(record.hashes, on: record.instanceID)
            }
            return .applied
        }
    }

    /// How many prefix hashes to remember for an instance: as many chunks as its KV cache holds
    /// when it says how big that is, else the table's default.
    public func affinityCapacity(_ record: InstanceRecord) -> Int {
        guard let tokens = record.kvCapacityTokens, tokens > 0 else { return PrefixAffinityTable.defaultCapacity }
        // Computed in the replicated apply, from what an agent said: bounded, so no value traps
        // (a capacity of Int.max at one token a chunk would) or grows the table without end.
        let chunks = Double(tokens) / max(1, (policy ?? PolicyConfiguration()).chunkTokens)
        return max(1, Int(min(chunks, Double(Self.maxAffinityCapacity))))
    }

    /// The most prefix chunks remembered for one instance: 4 M chunks, 268 M tokens at 64 a chunk,
    /// far beyond any engine's KV cache.
    public static let maxAffinityCapacity = 1 << 22

    private mutating func registryChanged() -> ApplyOutcome {
        registryVersion += 1
        sortedInstances = instances.values.sorted { $0.id < $1.id }
        return .registryChanged(version: registryVersion)
    }

    // MARK: snapshots

    public struct Snapshot: Sendable, Equatable {
        public var instances: [InstanceRecord]
        public var policy: PolicyConfiguration?
        /// Per instance, its prefix hashes oldest first.
        public var affinity: [AffinityRecord]
        public var registryVersion: UInt64

        public init(instances: [InstanceRecord], policy: PolicyConfiguration?, affinity: [AffinityRecord], registryVersion: UInt64) {
            self.instances = instances
            self.policy = policy
            self.affinity = affinity
            self.registryVersion = registryVersion
        }
    }

    public var snapshot: Snapshot {
        Snapshot(
            instances: sortedInstances, policy: policy,
            affinity: affinity.entries.map { AffinityRecord(instanceID: $0.instance, hashes: $0.hashesOldestFirst) },
            registryVersion: registryVersion)
    }

    public init(snapshot: Snapshot) {
        for record in snapshot.instances { instances[record.id] = record }
        sortedInstances = instances.values.sorted { $0.id < $1.id }
        policy = snapshot.policy
        registryVersion = snapshot.registryVersion
        affinity = PrefixAffinityTable(
            entries: snapshot.affinity.map { record in
                let capacity = instances[record.instanceID].map(affinityCapacity) ?? PrefixAffinityTable.defaultCapacity
                return (record.instanceID, capacity, record.hashes)
            })
    }
}
