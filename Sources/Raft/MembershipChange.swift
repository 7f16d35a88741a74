/// A single-server membership change (Ongaro's dissertation, §4.1): one node at a time, so the
/// majorities of the old and the new configuration always overlap and no two leaders can be
/// elected in one term whichever configuration each voter has applied. A new node first joins as
/// a learner (it receives the log but neither votes nor counts towards a quorum) and is promoted
/// once it has caught up, so adding it never stalls commits while it copies the log.
/// A `claim` records the incarnation a member answers as (see `Membership.incarnations`); the
/// leader proposes it itself for a member it hears from that has none yet.
public enum MembershipChange: Sendable, Hashable, CustomStringConvertible {
    /// `address`: where the shell reaches it, replicated with the change ("" = the shell knows).
    case addLearner(NodeID, address: String = "")
    case promote(NodeID)
    case remove(NodeID)
    case claim(NodeID, incarnation: UInt64)

    public var node: NodeID {
        switch self {
        case .addLearner(let id, _), .promote(let id), .remove(let id), .claim(let id, _): id
        }
    }

    public var description: String {
        switch self {
        case .addLearner(let id, let address): address.isEmpty ? "add learner \(id)" : "add learner \(id) at \(address)"
        case .promote(let id): "promote \(id)"
        case .remove(let id): "remove \(id)"
        case .claim(let id, let incarnation): "claim \(id) as incarnation \(hexIncarnation(incarnation))"
        }
    }
}

/// Incarnations print as 16 hex digits, as `junction ctl status` shows them.
public func hexIncarnation(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

extension Membership {
    /// The membership after `change`, or why the change makes no sense from here.
    public func applying(_ change: MembershipChange) throws(RaftError) -> Membership {
        var next = self
        switch change {
        case .addLearner(let id, let address):
            guard id != 0 else { throw .invalidRequest("node id 0 is reserved for nobody") }
            guard !members.contains(id) else { throw .invalidRequest("node \(id) is already a member") }
            guard address.utf8.count <= Membership.maxAddressBytes else {
                throw .invalidRequest("address of node \(id) is longer than \(Membership.maxAddressBytes) bytes")
            }
            next.learners.insert(id)
            next.addresses[id] = address.isEmpty ? nil : address
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
            next.incarnations[id] = nil
            next.addresses[id] = nil
        case .claim(let id, let incarnation):
            guard members.contains(id) else { throw .invalidRequest("node \(id) is not a member") }
            guard incarnation != 0 else { throw .invalidRequest("incarnation 0 is reserved for nobody") }
            if let claimed = incarnations[id] {
                // A different one is another disk under the same id (wiped, or a copy): only an
                // operator, by removing and adding the node again, may let it vote.
                throw .invalidRequest(claimed == incarnation
                    ? "node \(id) is already claimed as \(hexIncarnation(incarnation))"
                    : "node \(id) is claimed as \(hexIncarnation(claimed)), not \(hexIncarnation(incarnation)): replace it")
            }
            next.incarnations[id] = incarnation
        }
        return next
    }

    /// The bytes of a `membership` entry: a version byte, then the voters and the learners, each
    /// a count and ascending big-endian ids; version 2 adds the claimed incarnations (a count,
    /// then (id, incarnation) pairs by id) and the addresses (a count, then id, length and UTF-8
    /// bytes, by id). Kept in the core (no protobuf here) and stable on disk, since entries
    /// outlive the binary that wrote them; version 1 is still written while both are empty.
    public var encoded: [UInt8] {
        let plain = incarnations.isEmpty && addresses.isEmpty
        var bytes: [UInt8] = [plain ? 1 : 2]
        for set in [voters, learners] {
            append(UInt64(set.count), to: &bytes)
            for id in set.sorted() { append(id, to: &bytes) }
        }
        guard !plain else { return bytes }
        append(UInt64(incarnations.count), to: &bytes)
        for (id, incarnation) in incarnations.sorted(by: { $0.key < $1.key }) {
            append(id, to: &bytes)
            append(incarnation, to: &bytes)
        }
        append(UInt64(addresses.count), to: &bytes)
        for (id, address) in addresses.sorted(by: { $0.key < $1.key }) {
            append(id, to: &bytes)
            append(UInt64(address.utf8.count), to: &bytes)
            bytes.append(contentsOf: address.utf8)
        }
        return bytes
    }

    /// Reads `encoded`; nil for bytes that are not a membership this version can read.
    public init?(encoded bytes: [UInt8]) {
        guard let version = bytes.first, version == 1 || version == 2 else { return nil }
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
        var incarnations: [NodeID: UInt64] = [:]
        var addresses: [NodeID: String] = [:]
        if version == 2 {
            func isMember(_ id: NodeID) -> Bool { sets[0].contains(id) || sets[1].contains(id) }
            guard let claims = next(), claims <= UInt64(bytes.count - offset) / 16 else { return nil }
            for _ in 0..<claims {
                guard let id = next(), let incarnation = next(), incarnation != 0,
                      isMember(id), incarnations[id] == nil else { return nil }
                incarnations[id] = incarnation
            }
            guard let count = next(), count <= UInt64(bytes.count - offset) / 16 else { return nil }
            for _ in 0..<count {
                guard let id = next(), let length = next(), length >= 1, length <= Membership.maxAddressBytes,
                      length <= UInt64(bytes.count - offset), isMember(id), addresses[id] == nil,
                      let address = String(validating: bytes[offset..<offset + Int(length)], as: UTF8.self) else { return nil }
                offset += Int(length)
                addresses[id] = address
            }
            // Version 2 is written only when one of them is not empty.
            guard claims + count > 0 else { return nil }
        }
        guard offset == bytes.count, !sets[0].isEmpty, sets[0].isDisjoint(with: sets[1]) else { return nil }
        self.init(voters: sets[0], learners: sets[1], incarnations: incarnations, addresses: addresses)
    }
}

private func append(_ value: UInt64, to bytes: inout [UInt8]) {
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
}
