/// The seed's table for one run: successful requests, duration, tokens, throughput, TTFT and
/// TPOT (mean, median, P99), plus end-to-end latency and the engines' prefix-cache hit rate.
public struct BenchSummary: Sendable, Equatable, Codable {
    public struct Distribution: Sendable, Equatable, Codable {
        public var mean: Double
        public var median: Double
        public var p99: Double

        /// Milliseconds, from samples in seconds; zeros when there are none.
        init(seconds samples: [Double]) {
            guard !samples.isEmpty else {
                (mean, median, p99) = (0, 0, 0)
                return
            }
            let sorted = samples.sorted()
            func rank(_ q: Double) -> Double { sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))] }
            mean = sorted.reduce(0, +) / Double(sorted.count) * 1000
            median = rank(0.5) * 1000
            p99 = rank(0.99) * 1000
        }
    }

    public var target: String
    public var successful: Int
    public var failed: Int
    public var durationSeconds: Double
    public var inputTokens: Int
    public var outputTokens: Int
    public var requestThroughput: Double
    public var outputThroughput: Double
    public var totalThroughput: Double
    public var ttftMs: Distribution
    public var tpotMs: Distribution
    public var latencyMs: Distribution
    /// Prefix-cache hits over queried prompt tokens, summed over the engines; nil if unknown.
    public var prefixCacheHitRate: Double?
    /// The first few distinct failure reasons.
    public var errors: [String]

    /// Duration runs from the first request's start to the last one's end.
    public init(target: String, records: [RequestRecord], prefixCacheHitRate: Double? = nil) {
        let ok = records.filter(\.succeeded)
        self.target = target
        successful = ok.count
        failed = records.count - ok.count
        let start = records.map(\.start).min() ?? 0
        let end = records.map(\.end).max() ?? 0
        durationSeconds = max(end - start, 0)
        inputTokens = ok.reduce(0) { $0 + $1.promptTokens }
        outputTokens = ok.reduce(0) { $0 + $1.outputTokens }
        let seconds = max(durationSeconds, 1e-9)
        requestThroughput = Double(successful) / seconds
        outputThroughput = Double(outputTokens) / seconds
        totalThroughput = Double(inputTokens + outputTokens) / seconds
        ttftMs = Distribution(seconds: ok.compactMap(\.timeToFirstToken))
        tpotMs = Distribution(seconds: ok.compactMap(\.timePerOutputToken))
        latencyMs = Distribution(seconds: ok.map { $0.end - $0.start })
        self.prefixCacheHitRate = prefixCacheHitRate
        var reasons: [String] = []
        for record in records {
            if let error = record.error, !reasons.contains(error), reasons.count < 5 { reasons.append(error) }
        }
        errors = reasons
    }
}
