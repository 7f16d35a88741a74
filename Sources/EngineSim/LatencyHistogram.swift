/// A Prometheus histogram: cumulative buckets, sum and count.
struct LatencyHistogram: Sendable {
    let bounds: [Double]
    private(set) var counts: [UInt64]
    private(set) var sum = 0.0
    private(set) var count: UInt64 = 0

    init(bounds: [Double]) {
        self.bounds = bounds
        counts = Array(repeating: 0, count: bounds.count)
    }

    mutating func observe(_ value: Double) {
        sum += value
        count += 1
        // Buckets are few (< 30); a linear scan from the low end is as fast as a search here.
        for index in bounds.indices where value <= bounds[index] { counts[index] += 1 }
    }

    /// vLLM's buckets for time to first token (seconds).
    static let timeToFirstToken: [Double] = [
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
        160.0, 640.0, 2560.0,
    ]
    /// vLLM's buckets for inter-token latency (seconds).
    static let interToken: [Double] = [
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    ]
    /// vLLM's buckets for whole-request times (seconds).
    static let requestTime: [Double] = [
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
        1920.0, 7680.0,
    ]
    /// Token-count buckets (1, 2, 5 steps up to the context window).
    static func tokenCounts(upTo limit: Int) -> [Double] {
        var bounds: [Double] = []
        var scale = 1
        while scale <= limit {
            for step in [1, 2, 5] where step * scale <= limit { bounds.append(Double(step * scale)) }
            scale *= 10
        }
        return bounds
    }
}
