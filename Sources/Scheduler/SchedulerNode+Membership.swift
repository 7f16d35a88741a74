import Raft
import Wire

/// Membership changes asked for over the wire (`junction ctl add-member`, `remove-member`,
/// `replace-member`), and keeping the Raft connections in step with the applied membership.
extension SchedulerNode {
    func changeMembership(_ request: MembershipChangeRequest) async throws -> Envelope.Body {
        guard await leads() else { return await notLeaderReply() }
        guard request.nodeID != 0 else { throw WireError(.invalidArgument, "node_id must be a positive integer") }
        let change: MembershipChange
        switch request.kind {
        case .addLearner:
            guard ReconnectingWireClient.Target(address: request.address) != nil,
                  request.address.utf8.count <= Raft.Membership.maxAddressBytes else {
                throw WireError(.invalidArgument, "address must be host:port (at most \(Raft.Membership.maxAddressBytes) bytes), not \"\(request.address)\"")
            }
            change = .addLearner(request.nodeID, address: request.address)
        case .promote:
            change = .promote(request.nodeID)
        case .remove:
            change = .remove(request.nodeID)
        }
        do {
            try await replica.proposeMembershipChange(change)
        } catch let error as ReplicaError {
            switch error {
            case .membershipChangeRefused:
                throw WireError(.invalidArgument, error.description)
            case .storage, .stopped:
                throw WireError(.internal, error.description)
            default:
                throw WireError(.unavailable, error.description, retryAfterMs: 200)
            }
        }
        logger.notice("membership changed", metadata: ["change": "\(change)"])
        return .ack(Ack(index: await replica.status.appliedIndex, message: "\(change)"))
    }

    /// Where `member` listens: the address its addition carried, else the configured one.
    func memberAddress(_ member: NodeID, in membership: Raft.Membership) -> String? {
        membership.addresses[member] ?? config.member(member).map { "\($0.host):\($0.port)" }
    }

    /// Dials every other member of the applied membership, and the schedulers outside it and
    /// outside the config file that named their address (`noteAddress`): a member added with
    /// an address is dialled there, a removed one's connections close, and a newcomer that
    /// leads or campaigns before this node has applied its addition gets this node's answers,
    /// so this node catches up, and votes if the group needs it to.
    func syncPeers() {
        let membership = onReplica { $0.membership }
        var wanted: [NodeID: ReconnectingWireClient.Target] = [:]
        let needed = membership.members.union(learnedAddresses.keys)
        for member in needed where member != id {
            if let target = dialTarget(of: member, in: membership) { wanted[member] = target }
        }
        transport.setPeers(wanted)
    }

    private func dialTarget(of member: NodeID, in membership: Raft.Membership) -> ReconnectingWireClient.Target? {
        if let address = membership.addresses[member], let target = ReconnectingWireClient.Target(address: address) {
            return target
        }
        if let configured = config.member(member) {
            let (host, port) = config.dialAddress(of: configured)
            return ReconnectingWireClient.Target(host: host, port: port)
        }
        return learnedAddresses[member]
    }

    /// A heartbeat's or vote request's sender named where it listens. Kept only for a sender
    /// this node cannot otherwise dial (not in its membership or config: a newcomer that leads or
    /// campaigns before this node has applied its addition); then dialled.
    func noteAddress(_ address: String, of sender: NodeID) {
        guard sender != id, learnedAddresses[sender] == nil, config.member(sender) == nil,
              dialTarget(of: sender, in: onReplica({ $0.membership })) == nil,
              let target = ReconnectingWireClient.Target(address: address) else { return }
        learnedAddresses[sender] = target
        logger.notice("a leader outside this node's membership named its address", metadata: ["node": "\(sender)", "address": "\(address)"])
        syncPeers()
    }
}
