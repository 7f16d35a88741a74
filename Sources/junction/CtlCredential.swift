import ArgumentParser
import ClusterConfig
import Foundation
import Wire

/// `junction ctl credential --role agent --id vllm-0 --config root.json`: prints the credential of
/// one role and node id, derived from the root secret in the config, for a process that should
/// hold only its own (`cluster.credential` in its config; Docs/security.md). Offline: it talks to
/// no scheduler.
struct CtlCredential: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential",
        abstract: "Print the credential of one role and node id (derived from cluster.secret) for a process's cluster.credential.")

    @Option(help: "The config file holding cluster.secret, the root.") var config: String
    @Option(help: "gateway, agent, operator, scheduler or bench.") var role: String
    @Option(help: "The node id it proves: an agent's instance id, a gateway's name, a scheduler's id, an operator's name.") var id: String

    func run() throws {
        guard let role = Role(name: role) else { throw ValidationError("--role \(role): one of gateway, agent, operator, scheduler, bench") }
        guard Credential.isValidNodeID(id) else {
            throw ValidationError("--id '\(id)': 1 to \(Credential.maxNodeIDBytes) printable characters, no ':' or spaces")
        }
        let cluster: ClusterConfiguration
        do { cluster = try ClusterConfiguration.parse(try ConfigFile.load(path: config)) } catch { throw ValidationError(error.description) }
        guard let secret = cluster.secret else { throw ValidationError("\(config) has no cluster.secret: only the root derives credentials") }
        print(Credential.derive(root: .init(data: Array(secret.utf8)), role: role, nodeID: id).token)
    }
}
