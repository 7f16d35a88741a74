import ClusterConfig
import Crypto
import Foundation

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
            try wire.useTLS(cluster.tls)
            return wire
        }
        guard let secret = cluster.secret else {
            throw ConfigError(key: "cluster.secret", reason: "required (or cluster.credential)")
        }
        guard Credential.isValidNodeID(nodeID) else {
            throw ConfigError(key: "cluster", reason: "the name '\(nodeID)' is not a node id: 1 to \(Credential.maxNodeIDBytes) printable characters, no ':'")
        }
        var wire = WireConfiguration(role: role, nodeID: nodeID, clusterSecret: secret)
        try wire.useTLS(cluster.tls)
        return wire
    }
}

extension WireTLS {
    /// Reads the PEM files `files` names; a file that cannot be read or used is a config error
    /// naming its key under `key`.
    public init(files: TLSFiles, key: String = "cluster.tls") throws(ConfigError) {
        func read(_ path: String?, _ name: String) throws(ConfigError) -> [UInt8] {
            guard let path else { throw ConfigError(key: "\(key).\(name)", reason: "required: the path of a PEM file") }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigError(key: "\(key).\(name)", reason: "cannot read \(path)")
            }
            return Array(data)
        }
        do {
            try self.init(caPEM: read(files.ca, "ca"), certificatePEM: read(files.certificate, "certificate"), keyPEM: read(files.key, "key"))
        } catch let error as WireTLSError {
            throw ConfigError(key: key, reason: error.description)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(key: key, reason: "\(error)")
        }
    }
}

extension WireConfiguration {
    /// Adds `cluster.tls` (`files`), when the file has it, checking that this process's own certificate
    /// names the role and node id it proves (a mismatch would be refused by every peer).
    public mutating func useTLS(_ files: TLSFiles?) throws(ConfigError) {
        guard let files else { return }
        let tls = try WireTLS(files: files)
        let own = CertificateIdentity(role: role, nodeID: nodeID)
        guard tls.ownIdentities.contains(own) else {
            let named = tls.ownIdentities.isEmpty ? "no junction:ROLE:ID URI" : tls.ownIdentities.map(\.uri).joined(separator: ", ")
            throw ConfigError(key: "cluster.tls.certificate", reason: "the certificate names \(named); this process is \(own.uri)")
        }
        self.tls = tls
    }
}
