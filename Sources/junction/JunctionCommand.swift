import ArgumentParser

@main
struct JunctionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "junction",
        abstract: "Junction: an LLM-aware router for vLLM, SGLang and BladeLLM engine pools.",
        version: "0.1.0",
        subcommands: [SchedulerCommand.self, AgentCommand.self, GatewayCommand.self, CtlCommand.self, ConfigCommand.self, EngineSimCommand.self, BenchCommand.self]
    )
}
