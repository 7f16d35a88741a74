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
/// The prefill rate is learned from the reports' prompt tokens per second that the engine
/// computed (not served from its cache). Throughput is only a lower bound of capacity when the
/// engine had spare time, so an idle report can only raise the estimate; a report with requests
/// waiting was taken while prefill was the bottleneck, and moves the estimate towards what it
/// shows, unless the engine's KV cache was nearly full (`memoryBound`): then requests wait for
/// blocks to free, not for prefill, and the report says nothing of the prefill rate. A value with
/// no clock: time comes in as seconds on any monotonic clock.
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
        let observed = computedTokensPerSecond
        guard observed.isFinite, observed > 0 else { return }
        if waiting > 0 {
            guard !memoryBound else { return }
            tokensPerSecond += (observed - tokensPerSecond) * Self.rateWeight
        } else if observed > tokensPerSecond {
            tokensPerSecond = observed
        }
        tokensPerSecond = max(1, tokensPerSecond)
    }

    private mutating func drain(to now: Double) {
        backlogTokens = backlog(at: now)
        updatedAt = max(updatedAt, now)
    }

    /// How far one saturated report moves the rate, and one request the mean request size.
    static let rateWeight = 0.3
    static let meanWeight = 0.1
}
