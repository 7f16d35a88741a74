/// The leader's running estimate of one instance's prefill work: how many prompt tokens it has
/// still to compute for requests already sent there, and how fast it computes them.
///
/// Reports come every few hundred milliseconds and cannot know what was sent since; this knows
/// at once. Every assignment adds the tokens the instance will have to compute for it (its
/// uncached prompt); the backlog drains at the estimated prefill rate, as a fluid queue (the
/// engine computes queued prompts back to back, a step's token budget at a time). Each report
/// re-anchors it: an engine with nothing waiting holds at most what was sent since the previous
/// report; one with requests waiting holds at least that many requests' worth.
///
/// The prefill rate is learned from the prompt tokens per second the engine computed (not served
/// from its cache), over the reports of the last `rateWindowSeconds` together, never over one
/// report: engines count a prompt's tokens when its prefill completes, so one report's interval
/// (a quarter of a second) may hold a whole step's prompts computed over a second or more before
/// it. Measured over a 250 ms report, a slow engine (`32b-l20x2`: 1,667 tokens a second at most)
/// showed 10,000 to 16,000; over 5 s, at most 1,561. Throughput is only a lower bound of capacity
/// when the engine had spare time, so a window with a report of nothing waiting can only raise
/// the estimate; a window in which requests waited in every report was taken while prefill was
/// the bottleneck, and moves the estimate towards what it shows, unless the engine's KV cache was
/// nearly full (`memoryBound`): then requests wait for blocks to free, not for prefill, and such a
/// report counts as one with spare time. A value with no clock: time comes in as seconds on any
/// monotonic clock.
public struct PrefillEstimate: Sendable, Equatable {
    /// Prompt tokens still to compute at `updatedAt`.
    public private(set) var backlogTokens = 0.0
    public private(set) var updatedAt = 0.0
    /// Prompt tokens the engine computes a second.
    public private(set) var tokensPerSecond: Double
    /// Tokens added since the latest report: an engine that says it has nothing waiting can
    /// hold no more than these (they reached it after its metrics were read, or are running).
    public private(set) var addedSinceReport = 0.0
    /// Mean uncached prompt of the requests sent here: a waiting request's likely size.
    public private(set) var meanRequestTokens: Double
    /// The reports of the last `rateWindowSeconds`, oldest first, and when the latest came.
    private var window: [RateSample] = []
    private var lastReportAt: Double?

    /// What one report showed of the prefill rate: tokens computed over its interval.
    struct RateSample: Sendable, Equatable {
        var tokens: Double
        var seconds: Double
        /// Requests waited for prefill (not for KV blocks) when it was taken.
        var saturated: Bool
    }

    public init(tokensPerSecond: Double, meanRequestTokens: Double) {
        self.tokensPerSecond = max(1, tokensPerSecond)
        self.meanRequestTokens = max(1, meanRequestTokens)
    }

    /// The backlog at `now`, drained since it was last changed.
    public func backlog(at now: Double) -> Double {
        max(0, backlogTokens - tokensPerSecond * max(0, now - updatedAt))
    }

    /// A request sent here that will compute `tokens` prompt tokens.
    public mutating func assigned(tokens: Double, at now: Double) {
        let tokens = max(0, tokens)
        drain(to: now)
        backlogTokens += tokens
        addedSinceReport += tokens
        meanRequestTokens += (tokens - meanRequestTokens) * Self.meanWeight
    }

    /// A report: `waiting` requests queued in the engine, `computedTokensPerSecond` prompt tokens
    /// it computed a second over the report's interval; `memoryBound` when its KV cache was under
    /// pressure.
    public mutating func reported(waiting: Int, computedTokensPerSecond: Double, memoryBound: Bool = false, at now: Double) {
        drain(to: now)
        if waiting == 0 {
            backlogTokens = min(backlogTokens, addedSinceReport)
        } else {
            backlogTokens = max(backlogTokens, Double(waiting) * meanRequestTokens)
        }
        addedSinceReport = 0
        let interval = lastReportAt.map { now - $0 } ?? 0
        lastReportAt = max(lastReportAt ?? now, now)
        let observed = computedTokensPerSecond
        // After a gap as long as the window (reports the agent did not send, or unhealthy ones),
        // this report's rate, over its agent's last scrape, cannot stand for the whole gap:
        // start the window again from here.
        if interval > Self.rateWindowSeconds { window.removeAll() }
        guard observed.isFinite, observed >= 0, interval > 0, interval <= Self.rateWindowSeconds else { return }
        window.append(RateSample(tokens: observed * interval, seconds: interval, saturated: waiting > 0 && !memoryBound))
        // Summed afresh each time (a few dozen reports): no drift over a long run.
        var windowSeconds = window.reduce(0) { $0 + $1.seconds }
        while let oldest = window.first, windowSeconds - oldest.seconds >= Self.rateWindowSeconds {
            windowSeconds -= oldest.seconds
            window.removeFirst()
        }
        guard windowSeconds >= Self.rateWindowSeconds else { return }
        let rate = window.reduce(0) { $0 + $1.tokens } / windowSeconds
        if window.allSatisfy(\.saturated) {
            tokensPerSecond += (rate - tokensPerSecond) * Self.rateWeight
        } else if rate > tokensPerSecond {
            tokensPerSecond = rate
        }
        tokensPerSecond = max(1, tokensPerSecond)
    }

    private mutating func drain(to now: Double) {
        backlogTokens = backlog(at: now)
        updatedAt = max(updatedAt, now)
    }

    /// The span of reports the rate is measured over: longer than an engine's longest step.
    public static let rateWindowSeconds = 5.0
    /// How far one saturated window moves the rate, and one request the mean request size.
    static let rateWeight = 0.3
    static let meanWeight = 0.1
}
