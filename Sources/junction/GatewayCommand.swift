import ArgumentParser
import Gateway
import Logging

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "The OpenAI-compatible front door: routes each request by the scheduler trio's decision (see Docs/gateway.md)."
    )

    @Option(help: "The cluster config file (JSON; Docs/configuration.md).") var config: String
    @Option(help: "Listen on this port instead of llm_gateway.listen's (0 picks a free one).") var port: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "notice"

    func run() async throws {
        var configuration: GatewayConfiguration
        do { configuration = try GatewayConfiguration.load(path: config) } catch { throw ValidationError(error.description) }
        if let port { configuration.port = port }
        var logger = Logger(label: "gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        try await GatewayServer.run(configuration, logger: logger)
    }
}
