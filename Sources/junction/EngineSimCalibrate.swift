import ArgumentParser
import EngineModel
import Foundation

struct EngineSimCalibrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Run a closed-loop multi-turn chat workload on one simulated engine in model time (no HTTP, "
            + "no clock) and print TTFT, TPOT and throughput, to check a profile against published figures."
    )

    @Option(help: "Profile to run.") var profile = "7b-l20"
    @Option(help: "Concurrent clients on this one engine.") var clients = 100
    @Option(help: "Requests to complete.") var requests = 740
    @Option(help: "Median user-turn length in tokens.") var userTokens = 200.0
    @Option(help: "Median answer length in tokens (answers are forced to this drawn length).") var answerTokens = 1100.0
    @Option(help: "Longest conversation in turns (conversations have 1...N turns).") var maxTurns = 4
    @Option(help: "Workload seed.") var seed: UInt64 = 1
    @Option(help: "Instances the seed's figures were measured over; throughput is multiplied by this.") var instances = 5

    func run() async throws {
        let engineProfile: EngineProfile
        do { engineProfile = try EngineProfile.named(profile) } catch { throw ValidationError("\(error)") }
        guard clients > 0, requests > 0, maxTurns >= 1 else { throw ValidationError("clients, requests and max-turns must be positive") }
        let workload = CalibrationWorkload(
            clients: clients, requests: requests, turnsPerConversation: 1...maxTurns, userTokensMedian: userTokens,
            answerTokensMedian: answerTokens, seed: seed)
        let result = try Calibration.run(profile: engineProfile, workload: workload)
        let ttft = result.timesToFirstToken.sorted()
        let tpot = result.timesPerOutputToken.sorted()
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        func quantile(_ values: [Double], _ q: Double) -> Double {
            values.isEmpty ? 0 : values[min(values.count - 1, Int(Double(values.count) * q))]
        }
        func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
        let perInstanceRate = Double(result.requests) / result.duration
        print("profile \(engineProfile.name) (\(engineProfile.summary)), \(clients) clients on one engine, seed \(seed)")
        print("requests                 \(result.requests) in \(String(format: "%.1f", result.duration)) s of model time")
        print("input / output tokens    \(result.inputTokens) / \(result.outputTokens) "
            + "(mean \(result.inputTokens / max(1, result.requests)) in, \(result.outputTokens / max(1, result.requests)) out)")
        print("prefix-cache hit         \(String(format: "%.1f", 100 * Double(result.cachedTokens) / Double(max(1, result.inputTokens))))% of input tokens; \(result.preemptions) preemptions")
        print("request throughput       \(String(format: "%.2f", perInstanceRate)) req/s per engine, "
            + "\(String(format: "%.2f", perInstanceRate * Double(instances))) for \(instances)")
        print("output tokens/s          \(String(format: "%.0f", Double(result.outputTokens) / result.duration * Double(instances))) for \(instances)")
        print("total tokens/s           \(String(format: "%.0f", Double(result.inputTokens + result.outputTokens) / result.duration * Double(instances))) for \(instances)")
        print("TTFT mean/median/P99     \(ms(mean(ttft))) / \(ms(quantile(ttft, 0.5))) / \(ms(quantile(ttft, 0.99)))")
        print("TPOT mean/median/P99     \(ms(mean(tpot))) / \(ms(quantile(tpot, 0.5))) / \(ms(quantile(tpot, 0.99)))")
    }
}
