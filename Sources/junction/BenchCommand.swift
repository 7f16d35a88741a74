import ArgumentParser
import Bench
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures (build with -c release): load against a router or engine, and component benchmarks.",
        subcommands: [ServeBench.self, ReportBench.self, SampleBench.self, WireBench.self, RaftBench.self, RoutingBench.self, ScheduleBench.self]
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

struct RaftBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft",
        abstract: "Commits per second and commit latency of a 3-node group on file storage with fsync."
    )

    @Option(help: "Commands per batched measurement (the unbatched run uses at most 2,000).")
    var commands = 20_000

    func run() async throws {
        try RaftBenchmark.report(total: commands)
    }
}

struct RoutingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routing",
        abstract: "Decisions per second and decision latency of the pure policies at 8, 64 and 256 instances."
    )

    @Option(help: "Decisions per row.")
    var decisions = 20_000

    func run() async throws {
        RoutingBenchmark.report(decisions: decisions)
    }
}

struct ScheduleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "schedule calls per second and latency against the leader of a local trio, 1 and 64 in flight."
    )

    @Option(help: "Calls per row.") var calls = 20_000
    @Option(help: "Registered instances.") var instances = 64
    @Option(help: "Warm-up calls that fill the affinity table.") var warmUp = 20_000

    func run() async throws {
        // The trio runs this same executable as `junction scheduler`.
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        try await ScheduleBenchmark.report(binary: binary, calls: calls, instances: instances, warmUp: warmUp)
    }
}
