/// A single-server membership change (Ongaro's dissertation, §4.1): one node at a time, so the
/// majorities of the old and the new configuration always overlap and no two leaders can be
/// elected in one term whichever configuration each voter has applied. A new node first joins as
/// a learner (it receives the log but neither votes nor counts towards a quorum) and is promoted
/// once it has caught up, so adding it never stalls commits while it copies the log.
public enum MembershipChange: Sendable, Hashable, CustomStringConvertible {
    case addLearner(NodeID)
    case promote(NodeID)
    case remove(NodeID)

    public var node: NodeID {
        switch self {
        case .addLearner(let id), .promote(let id), .remove(let id): id
        }
    }

    public var description: String {
        switch self {
        case .addLearner(let id): "add learner \(id)"
        case .promote(let id): "promote \(id)"
        case .remove(let id): "remove \(id)"
        }
    }
}

extension Membership {
    /// The membership after `change`, or why the change makes no sense from here.
    public func applying(_ change: MembershipChange) throws(RaftError) -> Membership {
        var next = self
        switch change {
        case .addLearner(let id):
            guard id != 0 else { throw .invalidRequest("node id 0 is reserved for nobody") }
            guard !members.contains(id) else { throw .invalidRequest("node \(id) is already a member") }
            next.learners.insert(id)
        case .promote(let id):
            guard learners.contains(id) else {
                throw .invalidRequest(voters.contains(id) ? "node \(id) already votes" : "node \(id) is not a learner")
            }
            next.learners.remove(id)
            next.voters.insert(id)
        case .remove(let id):
            guard members.contains(id) else { throw .invalidRequest("node \(id) is not a member") }
            guard voters != [id] else { throw .invalidRequest("node \(id) is the last voter") }
            next.voters.remove(id)
            next.learners.remove(id)
        }
        return next
    }

    /// The bytes of a `membership` entry: a version byte, then the voters and the learners, each
    /// a count and ascending big-endian ids. Kept in the core (no protobuf here) and stable on
    /// disk, since entries outlive the binary that wrote them.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = [1]
        for set in [voters, learners] {
            append(UInt64(set.count), to: &bytes)
            for id in set.sorted() { append(id, to: &bytes) }
        }
        return bytes
    }

    /// Reads `encoded`; nil for bytes that are not a membership this version can read.
    public init?(encoded bytes: [UInt8]) {
        guard bytes.first == 1 else { return nil }
        var offset = 1
        func next() -> UInt64? {
            guard offset + 8 <= bytes.count else { return nil }
            var value: UInt64 = 0
            for byte in bytes[offset..<offset + 8] { value = value << 8 | UInt64(byte) }
            offset += 8
            return value
        }
        var sets: [Set<NodeID>] = []
        for _ in 0..<2 {
            guard let count = next(), count <= UInt64(bytes.count - offset) / 8 else { return nil }
            var set = Set<NodeID>()
            for _ in 0..<count {
                guard let id = next(), id != 0 else { return nil }
                set.insert(id)
            }
            sets.append(set)
        }
        guard offset == bytes.count, !sets[0].isEmpty, sets[0].isDisjoint(with: sets[1]) else { return nil }
        self.init(voters: sets[0], learners: sets[1])
    }
}

private func append(_ value: UInt64, to bytes: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
}
