import Routing

/// A change to the scheduler's replicated state: the payload of a Raft log entry
/// (`SchedulerCommand` in Proto/junction.proto). Everything a command depends on, including
/// times, is inside it, so applying it gives the same result on every member.
public enum SchedulerCommand: Sendable, Equatable {
    /// Registers an instance, or refreshes its registration (idempotent on the id).
    case upsertInstance(InstanceRecord)
    case setInstanceState(id: String, state: RoutingInstance.State, reason: String, atUnixMilliseconds: UInt64)
    case removeInstance(id: String)
    case setPolicy(PolicyConfiguration)
    /// Prefix chains the leader attributed to instances since its last batch, in decision order.
    case affinity([AffinityRecord])
}

public struct AffinityRecord: Sendable, Equatable {
    public var instanceID: String
    /// Chained prefix hashes in prompt order.
    public var hashes: [UInt64]

    public init(instanceID: String, hashes: [UInt64]) {
        self.instanceID = instanceID
        self.hashes = hashes
    }

    /// About what a record takes in a log entry (its id, 8 bytes a hash, framing).
    public var approximateBytes: Int { instanceID.utf8.count + 8 * hashes.count + 16 }

    /// `records` in order, cut into batches of at most `maxBytes` each (a record larger than
    /// that alone in its batch): one log entry each, so a burst of long prompts makes several
    /// entries of bounded size rather than one that no frame can carry.
    public static func batches(_ records: [AffinityRecord], maxBytes: Int) -> [[AffinityRecord]] {
        var batches: [[AffinityRecord]] = []
        var current: [AffinityRecord] = []
        var bytes = 0
        for record in records {
            let size = record.approximateBytes
            if !current.isEmpty, bytes + size > maxBytes {
                batches.append(current)
                current = []
                bytes = 0
            }
            current.append(record)
            bytes += size
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }
}

/// What applying a command did.
public enum ApplyOutcome: Sendable, Equatable {
    /// The registry changed; subscribers get the new table at this version.
    case registryChanged(version: UInt64)
    /// Applied, nothing a subscriber sees changed (the same registration again, policy, affinity).
    case applied
    /// The command named an instance the registry does not have; nothing changed.
    case unknownInstance(String)
    /// The command was malformed; nothing changed. The leader checks before proposing, so this
    /// is seen only for entries written by a faulty or newer peer.
    case rejected(String)
}
