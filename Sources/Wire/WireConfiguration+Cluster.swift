import ClusterConfig
import Crypto

extension WireConfiguration {
    /// The wire settings of a process of `role` from its config file: its `cluster.credential`
    /// when it has one (of `role`; the credential's node id is then the process's), else its
    /// credential for `nodeID` derived from `cluster.secret`.
    public static func forProcess(_ cluster: ClusterConfiguration, role: Role, nodeID: String) throws(ConfigError) -> WireConfiguration {
        if let token = cluster.credential {
            guard let credential = Credential(token: token) else {
                throw ConfigError(key: "cluster.credential", reason: "not a credential: junction-credential-v1:ROLE:ID:64 hex digits")
            }
            guard credential.role == role else {
                throw ConfigError(key: "cluster.credential", reason: "the credential is for role \(credential.role.name); this process runs as role \(role.name)")
            }
            var wire = WireConfiguration(credential: credential)
            // A process that also holds the root may accept peers (a scheduler); others may not.
            if let secret = cluster.secret { wire.rootSecret = .init(data: Array(secret.utf8)) }
            return wire
        }
        guard let secret = cluster.secret else {
            throw ConfigError(key: "cluster.secret", reason: "required (or cluster.credential)")
        }
        guard Credential.isValidNodeID(nodeID) else {
            throw ConfigError(key: "cluster", reason: "the name '\(nodeID)' is not a node id: 1 to \(Credential.maxNodeIDBytes) printable characters, no ':'")
        }
        return WireConfiguration(role: role, nodeID: nodeID, clusterSecret: secret)
    }
}
