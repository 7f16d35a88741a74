import Agent
import ArgumentParser
import ClusterConfig
import Gateway
import Logging
import Scheduler
import Wire

/// `junction config check --config F`: reads the file as every process would (each scheduler
/// of `cluster.schedulers`, a gateway, an agent; a file with one role's `cluster.credential` as
/// that role's process only) and says what each would refuse, without starting anything.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check a config file (Docs/configuration.md).", subcommands: [Check.self])

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Reads the file as each process would; exits 1 naming every problem found.")

        @Option(help: "The cluster config file (JSON).") var config: String
        @Option(name: .customLong("as"), help: "Check it only as this process reads it: scheduler, gateway or agent (default: every one; a file with one role's credential, as that role).")
        var process: String?

        func validate() throws {
            if let process, !["scheduler", "gateway", "agent"].contains(process) {
                throw ValidationError("--as \(process): one of scheduler, gateway, agent")
            }
        }

        func run() throws {
            let root: [String: Any]
            do { root = try ConfigFile.load(path: config) } catch {
                print(error.description)
                throw ExitCode(1)
            }
            var problems = ConfigSchema.check(root).errors.map(\.description)
            if problems.isEmpty {
                // Unknown keys first: the parsers below would stop at the first of them.
                do {
                    let cluster = try ClusterConfiguration.parse(root)
                    // A file holding one role's credential is that role's file (a Kubernetes
                    // ConfigMap per kind of pod): it is checked as that process only.
                    let role = cluster.credential.flatMap(Credential.init(token:))?.role
                    func checks(_ name: String, _ asRole: Role) -> Bool { process.map { $0 == name } ?? (role == nil || role == asRole) }
                    if checks("scheduler", .scheduler), process != nil || root["scheduler"] != nil {
                        for member in cluster.members {
                            do { _ = try SchedulerConfiguration.parse(root, id: member.id) } catch {
                                problems.append("scheduler \(member.id): \(error.description)")
                            }
                        }
                    }
                    if checks("gateway", .gateway) {
                        do { _ = try GatewayConfiguration.parse(root) } catch { problems.append("gateway: \(error.description)") }
                    }
                    if checks("agent", .agent) {
                        do { _ = try AgentConfiguration.parse(root, engineURL: "http://127.0.0.1:8000", instanceID: nil) } catch {
                            problems.append("agent: \(error.description)")
                        }
                    }
                    for key in cluster.unusedKeys { print("note: \(key) is accepted but not used by Junction") }
                } catch {
                    problems.append(error.description)
                }
            }
            guard problems.isEmpty else {
                for problem in problems { print(problem) }
                throw ExitCode(1)
            }
            print("\(config): ok")
        }
    }

    /// One line at start-up for the seed's keys a file carries and Junction ignores.
    static func noteUnused(_ keys: [String], logger: Logger) {
        guard !keys.isEmpty else { return }
        logger.notice("config keys accepted but not used by Junction", metadata: ["keys": "\(keys.joined(separator: ", "))"])
    }
}
