import ArgumentParser
import Bench
import BenchCore
import Foundation
import Seeded

/// The workload options shared by `bench serve` and `bench sample`: a ShareGPT file, or the
/// synthetic generator (Docs/benchmarks.md documents its distributions), with scenario presets.
struct WorkloadOptions: ParsableArguments {
    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        /// The seed's table: ShareGPT-like multi-turn chat, 1-4 turns, long answers (7B-class).
        case seed
        /// Long conversations over a few shared system prompts: most of every prompt is cached somewhere.
        case heavyReuse = "heavy-reuse"
    }

    @Option(help: "Replay this ShareGPT-format file instead of generating conversations.") var sharegpt: String?
    @Option(help: "Preset for the synthetic generator (\(Scenario.allCases.map(\.rawValue).joined(separator: ", "))); options below override it.")
    var scenario: Scenario = .seed
    @Option(help: "Conversations to generate.") var conversations: Int?
    @Option(help: "Turns per conversation, uniform: MIN-MAX.") var turns: String?
    @Option(help: "Median user-turn length in tokens (log-normal).") var userTokens: Double?
    @Option(help: "σ of the user-turn length's logarithm.") var userSigma: Double?
    @Option(help: "Median answer length in tokens (log-normal).") var answerTokens: Double?
    @Option(help: "σ of the answer length's logarithm.") var answerSigma: Double?
    @Option(help: "Distinct system prompts shared across conversations (0: none).") var systemPrompts: Int?
    @Option(help: "Length of each shared system prompt in tokens.") var systemPromptTokens: Int?
    @Option(help: "Longest answer asked for, in tokens.") var maxAnswerTokens: Int?
    @Option(help: "Seed of the generator, of the order conversations are played in, and of open-loop arrivals.") var seed: UInt64 = 1

    func synthetic() throws -> SyntheticWorkload {
        var workload = SyntheticWorkload()
        switch scenario {
        case .seed:
            // The shape `engine-sim calibrate` checks against the seed's totals (~1,750 input and
            // 1,320 output tokens a request).
            (workload.conversations, workload.turns) = (1_000, 1...4)
            (workload.userTokensMedian, workload.userTokensSigma) = (250, 0.8)
            (workload.answerTokensMedian, workload.answerTokensSigma) = (1_100, 0.6)
        case .heavyReuse:
            (workload.conversations, workload.turns) = (400, 4...10)
            (workload.userTokensMedian, workload.userTokensSigma) = (120, 0.6)
            (workload.answerTokensMedian, workload.answerTokensSigma) = (250, 0.5)
            (workload.systemPrompts, workload.systemPromptTokens) = (8, 1_500)
        }
        if let conversations { workload.conversations = conversations }
        if let turns {
            let parts = turns.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 1, parts[0] <= parts[1] else { throw ValidationError("--turns: MIN-MAX, e.g. 1-4") }
            workload.turns = parts[0]...parts[1]
        }
        if let userTokens { workload.userTokensMedian = userTokens }
        if let userSigma { workload.userTokensSigma = userSigma }
        if let answerTokens { workload.answerTokensMedian = answerTokens }
        if let answerSigma { workload.answerTokensSigma = answerSigma }
        if let systemPrompts { workload.systemPrompts = systemPrompts }
        if let systemPromptTokens { workload.systemPromptTokens = systemPromptTokens }
        if let maxAnswerTokens { workload.maxAnswerTokens = maxAnswerTokens }
        workload.seed = seed
        return workload
    }

    func conversationsToPlay() throws -> [Conversation] {
        guard let sharegpt else { return try synthetic().generate() }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: sharegpt)) } catch { throw ValidationError("--sharegpt: cannot read \(sharegpt): \(error.localizedDescription)") }
        var list: [Conversation]
        do { list = try ShareGPTFile.parse(data, maxAnswerTokens: maxAnswerTokens ?? 4_000) } catch { throw ValidationError("--sharegpt: \(error.description)") }
        var rng = SplitMix64(seed: seed)
        list.shuffle(using: &rng)
        return list
    }
}

struct ServeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Replay multi-turn chat against an OpenAI-compatible target (a router or an engine) and print the seed's table.",
        discussion: """
            Closed loop (--concurrency N users, each playing conversations turn by turn) or open loop (--rate R turns a second, \
            Poisson). Streams every request and measures TTFT, TPOT and end-to-end latency on the client side. --engine-metrics \
            URL (repeatable) reads the engines' prefix-cache counters before and after the run.
            """)

    @OptionGroup var workload: WorkloadOptions
    @Option(help: "Base URL of the target, e.g. http://127.0.0.1:8080.") var target: String
    @Option(help: "Name of this target in the report.") var name = "target"
    @Option(help: "Model name to request.") var model = "tiny"
    @Option(help: "Closed loop: concurrent users.") var concurrency: Int?
    @Option(help: "Open loop: turns a second (Poisson).") var rate: Double?
    @Option(help: "Stop starting requests after this many.") var requests = 1_000
    @Option(help: "Stop starting requests after this many seconds.") var maxSeconds = 600.0
    @Option(help: "Seconds a request may take before it counts as failed.") var requestTimeout = 300.0
    @Option(help: "A conversation ends before its history passes this many tokens.") var maxContextTokens = 16_384
    @Flag(help: "Let the engine stop at end-of-sequence instead of generating the answer's full length.") var noIgnoreEos = false
    @Option(help: "API key (Authorization: Bearer).") var apiKey: String?
    @Option(help: "An engine's /metrics URL for its prefix-cache counters (repeatable).") var engineMetrics: [String] = []
    @Option(help: "Write the summary and every request's record here (JSON).") var json: String?

    func run() async throws {
        guard (concurrency == nil) != (rate == nil) else { throw ValidationError("give --concurrency N (closed loop) or --rate R (open loop)") }
        let conversations = try workload.conversationsToPlay()
        var load = ServeLoad(
            target: target, model: model, mode: concurrency.map { .closed(concurrency: $0) } ?? .open(rate: rate!), requests: requests,
            maxDuration: .seconds(maxSeconds), requestTimeout: .seconds(requestTimeout), maxContextTokens: maxContextTokens)
        load.ignoreEOS = !noIgnoreEos
        load.apiKey = apiKey
        load.seed = workload.seed
        let before = await EngineCacheCounters.read(engineMetrics)
        let records = try await load.run(conversations)
        let after = await EngineCacheCounters.read(engineMetrics)
        let summary = BenchSummary(target: name, records: records, prefixCacheHitRate: EngineCacheCounters.hitRate(from: before, to: after))
        print(ComparisonTable.markdown([summary], baseline: nil))
        if !summary.errors.isEmpty { print("\nfailures (first \(summary.errors.count) kinds): " + summary.errors.joined(separator: "; ")) }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(BenchRun(summary: summary, records: records)).write(to: URL(fileURLWithPath: json))
        }
    }
}

struct ReportBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One comparison table (Markdown) and a TTFT plot (SVG) from several `bench serve --json` files.")

    @Argument(help: "JSON files written by `junction bench serve --json`.") var files: [String]
    @Option(help: "The target the others are compared with (its --name).") var baseline: String?
    @Option(help: "Write the TTFT distributions as an SVG here.") var plot: String?
    @Option(help: "Title of the plot.") var title = "Time to first token"

    func run() async throws {
        let runs = try files.map { file in try JSONDecoder().decode(BenchRun.self, from: Data(contentsOf: URL(fileURLWithPath: file))) }
        print(ComparisonTable.markdown(runs.map(\.summary), baseline: baseline))
        if let plot {
            let series = runs.map { run in (name: run.summary.target, ttftMs: run.records.compactMap(\.timeToFirstToken).map { $0 * 1000 }) }
            try TTFTPlot.svg(title: title, series: series).write(toFile: plot, atomically: true, encoding: .utf8)
        }
    }
}

struct SampleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Write generated conversations as a ShareGPT-format file (answers are filler text of the planned length).")

    @OptionGroup var workload: WorkloadOptions
    @Option(help: "Where to write.") var out: String

    func run() async throws {
        let generator = try workload.synthetic()
        let conversations = generator.generate()
        var rng = SplitMix64(seed: generator.seed ^ 0xA5A5)
        let answers = conversations.map { conversation in
            conversation.turns.map { SyntheticWorkload.words($0.answerTokens, using: &rng) }
        }
        try ShareGPTFile.render(conversations) { answers[$0][$1] }.write(to: URL(fileURLWithPath: out))
    }
}

/// What `bench serve --json` writes and `bench report` reads.
struct BenchRun: Codable {
    var summary: BenchSummary
    var records: [RequestRecord]
}
