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

    /// Dials every other member of the applied membership, and only them: a member added with
    /// an address is dialled there (so a node not in this node's config file is reached), and a
    /// removed one's connections close.
    func syncPeers() {
        let membership = onReplica { $0.status.membership }
        var wanted: [NodeID: ReconnectingWireClient.Target] = [:]
        for member in membership.members where member != id {
            if let address = membership.addresses[member], let target = ReconnectingWireClient.Target(address: address) {
                wanted[member] = target
            } else if let configured = config.member(member) {
                let (host, port) = config.dialAddress(of: configured)
                wanted[member] = ReconnectingWireClient.Target(host: host, port: port)
            }
        }
        transport.setPeers(wanted)
    }
}
