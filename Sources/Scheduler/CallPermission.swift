import Wire

/// Which role may send which message to a scheduler, and for whom (Docs/security.md). Checked on
/// every call, stream and one-way message before it is served; the role and node id are those
/// the connection's handshake proved (`Credential`), never what a message says about itself.
///
/// - scheduler: Raft, forwarded proposals, read indexes, status.
/// - gateway (and bench, for benchmarks and tests): schedule, finish, the instance table and
///   capacity subscriptions, budget leases, tenants, status.
/// - agent: registers, reports on, drains on stopping and deregisters its own instance only (the
///   node id its credential names); status (to find the leader); nothing else.
/// - operator (`junction ctl`): status, policy, drains, membership, deregistration, the table,
///   tenants.
public enum CallPermission {
    /// nil when `peer` may send `body`; otherwise why not.
    public static func refusal(_ body: Envelope.Body, from peer: PeerIdentity) -> String? {
        let role = peer.role
        let own = peer.nodeID
        // The sets are made once (`Roles`): this runs for every schedule and finish call.
        func only(_ roles: Set<Role>) -> String? {
            roles.contains(role) ? nil : "\(body.name) is for \(roles.map(\.name).sorted().joined(separator: " or ")), not a \(role.name)"
        }
        func ownInstance(_ id: String, _ what: String) -> String? {
            id == own ? nil : "agent '\(own)' may \(what) only its own instance, not '\(id)'"
        }
        switch body {
        case .raftMessage, .forwardProposal, .readIndexRequest:
            return only(Roles.scheduler)
        case .scheduleRequest, .finishRequest, .subscribeCapacity, .budgetLeaseRequest:
            return only(Roles.gateway)
        case .subscribeInstances, .tenantsRequest:
            return only(Roles.tableReaders)
        case .statusRequest:
            return only(Roles.statusReaders)
        case .setPolicyRequest, .membershipChangeRequest:
            return only(Roles.operator)
        case .registerInstance(let r):
            // One without an instance is not a question of permission: the handler refuses it as invalid.
            return only(Roles.agent) ?? ownInstance(r.instance?.id ?? own, "register")
        case .openReportStream(let r):
            return only(Roles.agent) ?? ownInstance(r.instanceID, "report on")
        case .deregisterInstance(let r):
            if role == .operator { return nil }
            return only(Roles.agentOrOperator) ?? ownInstance(r.instanceID, "deregister")
        case .drainRequest(let r):
            if role == .operator { return nil }
            guard role == .agent else { return only(Roles.operator) }
            // An agent drains its instance only as it stops (its next registration undoes it).
            guard r.agentStopping, !r.undrain else { return "an agent drains only its own instance, and only as it stops" }
            return ownInstance(r.instanceID, "drain")
        default:
            return "\(body.name) is not a call a scheduler serves"
        }
    }

    private enum Roles {
        static let scheduler: Set<Role> = [.scheduler]
        static let gateway: Set<Role> = [.gateway, .bench]
        static let tableReaders: Set<Role> = [.gateway, .bench, .operator]
        /// Agents too: `LeaderClient`'s discovery asks every scheduler for its status to find the
        /// leader. Without it an agent whose leader's host was cut off could only wait on a dial
        /// that hangs, while the new leader, hearing no reports, took every engine down.
        static let statusReaders: Set<Role> = [.scheduler, .gateway, .bench, .agent, .operator]
        static let `operator`: Set<Role> = [.operator]
        static let agent: Set<Role> = [.agent]
        static let agentOrOperator: Set<Role> = [.agent, .operator]
    }
}
