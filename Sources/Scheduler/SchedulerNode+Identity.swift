import Logging
import Raft
import RaftStore
import Wire

/// The node's identity (`NodeIdentity`, in its data directory) and, for a directory made empty
/// at this start, finding out from the peers whether this is the group's first start.
extension SchedulerNode {
    /// Reads the data directory's identity, or makes one. Returns it and whether it was made now
    /// for an empty directory (the node then asks its peers before it may vote unclaimed).
    static func establishIdentity(config: SchedulerConfiguration, holdsData: Bool, logger: Logger) throws -> (NodeIdentity, madeNow: Bool) {
        if let existing = try NodeIdentity.load(directory: config.dataDirectory) {
            guard existing.clusterName == config.clusterName else {
                throw SchedulerStartError(
                    "the data directory \(config.dataDirectory) belongs to cluster \"\(existing.clusterName)\", but cluster.name is \"\(config.clusterName)\": refusing to start (wrong directory, or wrong config)")
            }
            if holdsData { return (existing, false) }
            // An identity without any Raft state: the node stopped before the group's first
            // election, or its log was deleted and the identity file left behind. Either way it
            // never voted or acknowledged anything under this incarnation that it still holds,
            // so it starts over as a new one and asks its peers again: kept, a restart before
            // the first election would leave it a joiner that no leader exists to claim, and a
            // deleted log would let it vote as the incarnation the group trusts.
            logger.notice("identity file without Raft state: starting as a new incarnation", metadata: ["old": "\(existing)"])
        }
        // A directory with Raft state and no identity comes from before identities existed: it
        // was a member all along, so it votes as before until a leader claims it.
        let identity = NodeIdentity.fresh(clusterName: config.clusterName, firstStart: holdsData)
        try identity.save(directory: config.dataDirectory)
        logger.notice("new identity for the data directory", metadata: ["identity": "\(identity)", "data_dir": "\(config.dataDirectory)"])
        return (identity, !holdsData)
    }

    /// For a directory made empty at this start: asks the configured schedulers (every 200 ms)
    /// until `FirstStartDecision` decides. On a first start the node may vote before it is
    /// claimed; otherwise it waits for a leader to claim it, or, if its id is claimed as an
    /// older incarnation, for an operator to replace it.
    func decideFirstStart() async {
        let voters = Set(config.members.map(\.id))
        var foreign = Set<NodeID>()
        while !Task.isCancelled {
            if onReplica({ $0.membership.incarnations[id] == identity.incarnation }) { return }
            var answers: [NodeID: FirstStartDecision.Answer] = [:]
            for peer in config.members where peer.id != id {
                let (host, port) = config.dialAddress(of: peer)
                guard let reply = await askStatus(at: ReconnectingWireClient.Target(host: host, port: port)) else { continue }
                if reply.clusterName.isEmpty {
                    answers[peer.id] = .holdsData // a version from before identities: it holds data
                } else if reply.clusterName != config.clusterName {
                    if foreign.insert(peer.id).inserted {
                        logger.error("a configured scheduler belongs to another cluster; ignoring it", metadata: [
                            "peer": "\(peer.id)", "its_cluster": "\(reply.clusterName)", "cluster.name": "\(config.clusterName)"])
                    }
                } else {
                    answers[peer.id] = reply.fresh ? .fresh : .holdsData
                }
            }
            let decision = FirstStartDecision.decide(me: id, voters: voters, answers: answers)
            firstStartDecision = decision
            switch decision {
            case .wait:
                try? await Task.sleep(for: .milliseconds(200))
            case .firstStart:
                var updated = identity
                updated.firstStart = true
                do { try updated.save(directory: config.dataDirectory) } catch {
                    logger.error("could not record the first start; staying a non-voter", metadata: ["error": "\(error)"])
                    return
                }
                onReplica { $0.allowVotingBeforeClaim() }
                logger.notice("first start of the scheduler group: this node votes", metadata: ["fresh_peers": "\(answers.filter { $0.value == .fresh }.keys.sorted())"])
                return
            case .join(let holder):
                logger.notice(
                    "joining a scheduler group that holds data: this node neither votes nor campaigns until a leader claims it (a wiped disk under a claimed id must be replaced: junction ctl replace-member)",
                    metadata: ["peer_with_data": "\(holder)", "incarnation": "\(hexIncarnation(identity.incarnation))"])
                return
            }
        }
    }

    func askStatus(at target: ReconnectingWireClient.Target) async -> StatusReply? {
        let (host, port) = (target.host, target.port)
        var wire = self.wire
        wire.handshakeTimeout = .milliseconds(500)
        guard let connection = try? await WireClient.connect(host: host, port: port, configuration: wire, connectTimeout: .milliseconds(500)) else {
            return nil
        }
        defer { connection.close() }
        guard case .statusReply(let reply)? = try? await connection.call(.statusRequest(StatusRequest()), timeout: .milliseconds(500)) else {
            return nil
        }
        return reply
    }
}

public struct SchedulerStartError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
