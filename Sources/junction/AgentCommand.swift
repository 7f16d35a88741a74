import Agent
import ArgumentParser
import ClusterConfig
import Logging
import ServiceLifecycle

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "The sidecar beside one engine: registers it with the scheduler trio and streams its load (see Docs/agent.md)."
    )

    @Option(help: "The engine's base URL, e.g. http://127.0.0.1:8000.") var engine: String
    @Option(help: "The cluster config file (JSON; Docs/configuration.md).") var config: String
    @Option(help: "The instance id to register (default: the engine's host-port).") var instanceID: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"

    func run() async throws {
        let configuration: AgentConfiguration
        do { configuration = try AgentConfiguration.load(path: config, engineURL: engine, instanceID: instanceID) } catch {
            throw ValidationError(error.description)
        }
        var logger = Logger(label: "agent-\(configuration.instanceID)")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let agent = Agent(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            services: [AgentService(agent: agent)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// On SIGTERM or SIGINT the agent drains its instance and deregisters before it exits.
struct AgentService: Service {
    let agent: Agent

    func run() async throws {
        await agent.run { try? await gracefulShutdown() }
    }
}
