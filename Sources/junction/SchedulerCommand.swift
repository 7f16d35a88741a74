import ArgumentParser
import ClusterConfig
import Foundation
import Logging
import Raft
import Scheduler
import ServiceLifecycle
import TraceExport

struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "One member of the Raft-replicated scheduler trio (see Docs/scheduler.md)."
    )

    @Option(help: "The cluster config file (JSON; Docs/configuration.md).") var config: String
    @Option(help: "This scheduler's id, as listed in cluster.schedulers. Default: from the host's name, NAME-N is id N+1 (a StatefulSet's pods).")
    var id: UInt64?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"
    @Option(help: "Serve /metrics, /healthz and /readyz over HTTP at HOST:PORT (port 0: any free port). Off by default.")
    var metricsListen: String?

    func validate() throws {
        if let metricsListen, ConfigFile.splitListenAddress(metricsListen) == nil {
            throw ValidationError("--metrics-listen '\(metricsListen)' is not HOST:PORT")
        }
    }

    func run() async throws {
        let hostname = Self.hostname()
        guard let id = id ?? SchedulerIDFromHostname.id(hostname) else {
            throw ValidationError("--id is required: the host's name '\(hostname)' does not end in -N (a StatefulSet's pod N is scheduler N+1)")
        }
        let configuration: SchedulerConfiguration
        do { configuration = try SchedulerConfiguration.load(path: config, id: id) } catch { throw ValidationError(error.description) }
        var logger = Logger(label: "scheduler-\(id)")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        if self.id == nil { logger.notice("scheduler id \(id), from the host's name", metadata: ["hostname": "\(hostname)"]) }
        ConfigCommand.noteUnused(configuration.unusedConfigKeys, logger: logger)
        let tracing = try configuration.tracing.map {
            try TraceExport.backend($0, service: "junction-scheduler", instance: String(id), logger: logger)
        }
        let node = try SchedulerNode(config: configuration, id: id, logger: logger, tracer: tracing?.tracer)
        // The exporter is listed first, so it stops last and sends the node's final spans.
        let group = ServiceGroup(
            services: (tracing.map { [$0.service] } ?? [])
                + [SchedulerNodeService(node: node, id: id, metricsAt: metricsListen.flatMap(ConfigFile.splitListenAddress))],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

extension SchedulerCommand {
    /// The kernel's host name (a pod's name in Kubernetes), without a DNS lookup.
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Runs the node until SIGTERM or SIGINT. A scheduler holds no request state worth draining,
/// but a leader first hands leadership to a caught-up follower (bounded by two election
/// timeouts) while it still serves, so its peers take over without waiting out an election.
struct SchedulerNodeService: Service {
    let node: SchedulerNode
    let id: UInt64
    let metricsAt: (host: String, port: Int)?

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [metricsAt, id] in
                try await node.run(
                    metricsAt: metricsAt,
                    onListening: { port in say("scheduler \(id) listening on port \(port)") },
                    onMetricsListening: { port in say("scheduler \(id) metrics listening on http://\(metricsAt?.host ?? ""):\(port)") })
            }
            group.addTask {
                // Returns when a stop is asked for; throws if this service is cancelled first.
                try await gracefulShutdown()
                await node.handOverLeadership()
                throw CancellationError()
            }
            do {
                try await group.next()
            } catch is CancellationError {
                // The hand-over ran (or the service was cancelled): stop serving.
            }
            group.cancelAll()
        }
    }
}

/// A line on standard output, written at once (not held in a buffer while stdout is a file):
/// scripts and tests wait for "listening on" lines.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
