import Agent
import ArgumentParser
import ClusterConfig
import Logging
import MetricsEndpoint
import ServiceLifecycle

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "The sidecar beside one engine: registers it with the scheduler trio and streams its load (see Docs/agent.md)."
    )

    @Option(help: "The engine's base URL, e.g. http://127.0.0.1:8000.") var engine: String
    @Option(help: "The cluster config file (JSON; Docs/configuration.md).") var config: String
    @Option(help: "The instance id to register (default: the engine's host-port).") var instanceID: String?
    @Option(help: "The instance's part in prefill/decode disaggregation: both, prefill or decode (overrides agent.role).")
    var role: String?
    @Option(help: "SGLang prefill instances: the bootstrap port (overrides agent.bootstrap_port).") var bootstrapPort: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"
    @Option(help: "Serve /metrics, /healthz and /readyz over HTTP at HOST:PORT (port 0: any free port). Off by default.")
    var metricsListen: String?

    func run() async throws {
        var configuration: AgentConfiguration
        do { configuration = try AgentConfiguration.load(path: config, engineURL: engine, instanceID: instanceID) } catch {
            throw ValidationError(error.description)
        }
        if let role {
            guard let parsed = AgentConfiguration.role(named: role) else { throw ValidationError("--role must be one of both, prefill, decode") }
            configuration.role = parsed
        }
        if let bootstrapPort {
            guard (1...65_535).contains(bootstrapPort) else { throw ValidationError("--bootstrap-port must be from 1 to 65535") }
            configuration.bootstrapPort = bootstrapPort
        }
        var logger = Logger(label: "agent-\(configuration.instanceID)")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        ConfigCommand.noteUnused(configuration.cluster.unusedKeys, logger: logger)
        let agent = Agent(configuration: configuration, logger: logger)
        var metrics: MetricsServer?
        if let metricsListen {
            guard let (host, port) = ConfigFile.splitListenAddress(metricsListen) else {
                throw ValidationError("--metrics-listen '\(metricsListen)' is not HOST:PORT")
            }
            // Bound before anything else runs: an address in use fails the start, loudly.
            let server = try await MetricsServer.bind(host: host, port: port, responder: agent.metricsResponder)
            say("agent \(configuration.instanceID) metrics listening on http://\(host):\(server.port)")
            metrics = server
        }
        let group = ServiceGroup(
            services: [AgentService(agent: agent, metrics: metrics)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// On SIGTERM or SIGINT the agent drains its instance and deregisters before it exits; its
/// metrics endpoint serves until then.
struct AgentService: Service {
    let agent: Agent
    let metrics: MetricsServer?

    func run() async throws {
        await withTaskGroup { group in
            if let metrics { group.addTask { await metrics.run() } }
            await agent.run { try? await gracefulShutdown() }
            group.cancelAll()
        }
    }
}
