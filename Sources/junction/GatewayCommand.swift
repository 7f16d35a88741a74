import ArgumentParser
import Foundation
import Gateway
import Logging
import TraceExport

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "The OpenAI-compatible front door: routes each request by the scheduler trio's decision (see Docs/gateway.md)."
    )

    @Option(help: "The cluster config file (JSON; Docs/configuration.md).") var config: String
    @Option(help: "Listen on this port instead of llm_gateway.listen's (0 picks a free one).") var port: Int?
    @Option(help: "Name this gateway in its answers' X-Junction-Gateway header (default: its listen address).") var name: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"

    func run() async throws {
        var configuration: GatewayConfiguration
        do { configuration = try GatewayConfiguration.load(path: config) } catch { throw ValidationError(error.description) }
        if let port { configuration.port = port }
        if let name { configuration.name = name }
        // Gateways sharing a config keep their tables apart: `{name}` in the path becomes this one's name.
        configuration.tableCachePath = configuration.tableCachePath?.replacingOccurrences(
            of: "{name}", with: configuration.name ?? "\(configuration.host)-\(configuration.port)")
        var logger = Logger(label: "gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        ConfigCommand.noteUnused(configuration.cluster.unusedKeys, logger: logger)
        let tracing = try configuration.tracing.map {
            try TraceExport.backend(
                $0, service: "junction-gateway", instance: configuration.name ?? "\(configuration.host):\(configuration.port)", logger: logger)
        }
        try await GatewayServer.run(configuration, logger: logger, tracing: tracing.map { ($0.tracer, $0.service) })
    }
}
