import ArgumentParser
import Bench

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (build with -c release).",
        subcommands: [WireBench.self]
    )
}

struct WireBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Encode/decode speed of typical frames and call round-trip latency on loopback."
    )

    @Option(help: "Iterations per codec measurement.")
    var codecIterations = 200_000

    @Option(help: "Calls per round-trip measurement.")
    var calls = 50_000

    func run() async throws {
        try await WireBenchmarkReport.run(codecIterations: codecIterations, calls: calls)
    }
}
