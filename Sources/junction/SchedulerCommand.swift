import ArgumentParser
import Logging
import Raft
import Scheduler
import ServiceLifecycle

struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "One member of the Raft-replicated scheduler trio (see Docs/scheduler.md)."
    )

    @Option(help: "The cluster config file (JSON; Docs/configuration.md).") var config: String
    @Option(help: "This scheduler's id, as listed in cluster.schedulers.") var id: UInt64
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"

    func run() async throws {
        let configuration: SchedulerConfiguration
        do { configuration = try SchedulerConfiguration.load(path: config, id: id) } catch { throw ValidationError(error.description) }
        var logger = Logger(label: "scheduler-\(id)")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let node = try SchedulerNode(config: configuration, id: id, logger: logger)
        let group = ServiceGroup(
            services: [SchedulerNodeService(node: node, id: id)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// Runs the node until SIGTERM or SIGINT. A scheduler holds no request state worth draining:
/// it stops at once and the others elect a new leader.
struct SchedulerNodeService: Service {
    let node: SchedulerNode
    let id: UInt64

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await node.run { port in
                print("scheduler \(id) listening on port \(port)")
            }
        }
    }
}
