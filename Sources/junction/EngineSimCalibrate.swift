import ArgumentParser
import EngineModel
import Foundation

extension CalibrationWorkload.Placement: ExpressibleByArgument {}

struct EngineSimCalibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Run a closed-loop multi-turn chat workload on one simulated engine in model time (no HTTP, "
            + "no clock) and print TTFT, TPOT and throughput, to check a profile against published figures."
    )

    @Option(help: "Profile to run.") var profile = "7b-l20"
    @Option(help: "Concurrent clients in all.") var clients = 500
    @Option(help: "Requests to complete.") var requests = 3700
    @Option(help: "Median user-turn length in tokens.") var userTokens = 200.0
    @Option(help: "Median answer length in tokens (answers are forced to this drawn length).") var answerTokens = 1100.0
    @Option(help: "Longest conversation in turns (conversations have 1...N turns).") var maxTurns = 4
    @Option(help: "Workload seed.") var seed: UInt64 = 1
    @Option(help: "Engines behind the router.") var instances = 5
    @Option(help: "Placement: round-robin, or sticky (a conversation stays on one engine).") var placement: CalibrationWorkload.Placement = .roundRobin

    func run() async throws {
        let engineProfile: EngineProfile
        do { engineProfile = try EngineProfile.named(profile) } catch { throw ValidationError("\(error)") }
        guard clients > 0, requests > 0, maxTurns >= 1, instances >= 1 else { throw ValidationError("clients, requests and max-turns must be positive") }
        var workload = CalibrationWorkload(
            clients: clients, requests: requests, turnsPerConversation: 1...maxTurns, userTokensMedian: userTokens,
            answerTokensMedian: answerTokens, seed: seed)
        workload.instances = instances
        workload.placement = placement
        let result = try Calibration.run(profile: engineProfile, workload: workload)
        let ttft = result.timesToFirstToken.sorted()
        let tpot = result.timesPerOutputToken.sorted()
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        func quantile(_ values: [Double], _ q: Double) -> Double {
            values.isEmpty ? 0 : values[min(values.count - 1, Int(Double(values.count) * q))]
        }
        func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
        let rate = Double(result.requests) / result.duration
        print("profile \(engineProfile.name) (\(engineProfile.summary)), \(instances) engines, \(placement.rawValue), "
            + "\(clients) clients, seed \(seed)")
        print("requests                 \(result.requests) in \(String(format: "%.1f", result.duration)) s of model time")
        print("input / output tokens    \(result.inputTokens) / \(result.outputTokens) "
            + "(mean \(result.inputTokens / max(1, result.requests)) in, \(result.outputTokens / max(1, result.requests)) out)")
        print("prefix-cache hit         \(String(format: "%.1f", 100 * Double(result.cachedTokens) / Double(max(1, result.inputTokens))))% of input tokens; \(result.preemptions) preemptions")
        print("request throughput       \(String(format: "%.2f", rate)) req/s")
        print("output tokens/s          \(String(format: "%.0f", Double(result.outputTokens) / result.duration))")
        print("total tokens/s           \(String(format: "%.0f", Double(result.inputTokens + result.outputTokens) / result.duration))")
        print("TTFT mean/median/P99     \(ms(mean(ttft))) / \(ms(quantile(ttft, 0.5))) / \(ms(quantile(ttft, 0.99)))")
        print("TPOT mean/median/P99     \(ms(mean(tpot))) / \(ms(quantile(tpot, 0.5))) / \(ms(quantile(tpot, 0.99)))")
    }
}
