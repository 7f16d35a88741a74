import EngineModel

/// What the runner measures on the wall clock for /metrics: latency histograms, finished
/// requests by reason, and short windows of recent steps for the engines that export rates and
/// means (SGLang's gen_throughput, BladeLLM's *_mean and tps_*).
struct EngineMetrics: Sendable {
    var timeToFirstToken = LatencyHistogram(bounds: LatencyHistogram.timeToFirstToken)
    var interTokenLatency = LatencyHistogram(bounds: LatencyHistogram.interToken)
    var endToEnd = LatencyHistogram(bounds: LatencyHistogram.requestTime)
    var queueTime = LatencyHistogram(bounds: LatencyHistogram.requestTime)
    var promptTokens: LatencyHistogram
    var generationTokens: LatencyHistogram
    var maxTokensParam: LatencyHistogram
    var finished: [FinishReason: Int] = [:]
    private var window: [StepSample] = []
    private var windowStart = 0

    /// How far back the rates and means look.
    static let windowSeconds = 5.0

    init(maxModelLength: Int) {
        let counts = LatencyHistogram.tokenCounts(upTo: maxModelLength)
        promptTokens = LatencyHistogram(bounds: counts)
        generationTokens = LatencyHistogram(bounds: counts)
        maxTokensParam = LatencyHistogram(bounds: counts)
    }

    struct StepSample: Sendable {
        var at: ContinuousClock.Instant
        var prefillTokens: Int
        var generatedTokens: Int
        var decodeSequences: Int
        var waiting: Int
        var kvUsage: Double
    }

    mutating func recordStep(_ step: StepResult, running: Int, waiting: Int, kvUsage: Double, at now: ContinuousClock.Instant) {
        let generated = step.events.reduce(0) { count, event in
            if case .token = event { return count + 1 }
            return count
        }
        window.append(
            StepSample(
                at: now, prefillTokens: step.prefillTokens, generatedTokens: generated,
                decodeSequences: step.decodeSequences, waiting: waiting, kvUsage: kvUsage))
        let horizon = now.advanced(by: .seconds(-Self.windowSeconds))
        while windowStart < window.count, window[windowStart].at < horizon { windowStart += 1 }
        if windowStart > 4096 {
            window.removeFirst(windowStart)
            windowStart = 0
        }
    }

    mutating func recordFinish(_ timing: RequestTiming, reason: FinishReason, usage: TokenUsage, at now: ContinuousClock.Instant) {
        finished[reason, default: 0] += 1
        endToEnd.observe((now - timing.submitted) / .seconds(1))
        promptTokens.observe(Double(usage.promptTokens))
        generationTokens.observe(Double(usage.completionTokens))
        maxTokensParam.observe(Double(timing.maxTokens))
    }

    mutating func recordAbort() { finished[.abort, default: 0] += 1 }

    /// Rates and means over the recent window, as of `now` (zero when the engine was idle).
    func recent(at now: ContinuousClock.Instant) -> RecentActivity {
        let horizon = now.advanced(by: .seconds(-Self.windowSeconds))
        let samples = window[windowStart...].filter { $0.at >= horizon }
        guard !samples.isEmpty else { return RecentActivity() }
        let generated = samples.reduce(0) { $0 + $1.generatedTokens }
        let prefill = samples.reduce(0) { $0 + $1.prefillTokens }
        let count = Double(samples.count)
        return RecentActivity(
            generatedPerSecond: Double(generated) / Self.windowSeconds,
            tokensPerSecond: Double(generated + prefill) / Self.windowSeconds,
            meanDecodeBatch: Double(samples.reduce(0) { $0 + $1.decodeSequences }) / count,
            meanWaiting: Double(samples.reduce(0) { $0 + $1.waiting }) / count,
            meanKVUsage: samples.reduce(0) { $0 + $1.kvUsage } / count)
    }
}

struct RecentActivity: Sendable {
    var generatedPerSecond = 0.0
    var tokensPerSecond = 0.0
    var meanDecodeBatch = 0.0
    var meanWaiting = 0.0
    var meanKVUsage = 0.0
}

/// Everything /metrics and the info endpoints read, taken at one moment.
struct EngineSnapshot: Sendable {
    var profile: EngineProfile
    var counters: EngineCounters
    var running: Int
    var waiting: Int
    var kvUsage: Double
    var usedTokens: Int
    var cachedBlocks: Int
    var metrics: EngineMetrics
    var lora = LoRAInfo()
    var maxLoras = 1
    var handoff = HandoffSnapshot()
    /// vLLM with LoRA enabled: `vllm:lora_requests_info` is served.
    var loraEnabled = false
}

/// The series of vLLM's `vllm:lora_requests_info`: for each set of running and waiting adapters
/// seen, the last time (Unix seconds) a step ran with it. vLLM keeps every set; the simulator the
/// newest `limit`.
struct LoRAInfo: Sendable {
    struct Adapters: Hashable, Sendable {
        var running: [String]
        var waiting: [String]
    }

    private(set) var series: [Adapters: Double] = [:]
    static let limit = 64

    mutating func set(running: [String], waiting: [String], at time: Double) {
        series[Adapters(running: running, waiting: waiting)] = time
        if series.count > Self.limit, let oldest = series.min(by: { $0.value < $1.value }) { series[oldest.key] = nil }
    }
}

/// Each role's hand-off queues and counts at one moment (see HandoffStats).
struct HandoffSnapshot: Sendable {
    var role: SimRole = .both
    /// Decode side: requests waiting for their KV (also counted as waiting).
    var awaitingKV = 0
    var receivedBlocks = 0
    var transfers = 0
    var transferSeconds = 0.0
    var fetchFailures = 0
    /// Prefill side: computed prompts whose KV awaits its decode instance, and those handed over.
    var pendingHandoffs = 0
    var sentBlocks = 0
    var expiredHandoffs = 0
    var prefilledForDecode = 0

    var isActive: Bool { role != .both || transfers + fetchFailures + prefilledForDecode > 0 }
}
