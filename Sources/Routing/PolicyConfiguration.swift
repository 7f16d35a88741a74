/// The scheduling policy and its parameters; replicated through the Raft log so every member
/// decides the same way after a failover. Names are the seed's (`llm_scheduler.policy`).
public struct PolicyConfiguration: Sendable, Equatable {
    public enum Name: String, Sendable, CaseIterable {
        case expectedTTFT = "expected-ttft"
        case prefixCache = "prefix-cache"
        case llmMetrics = "llm-metrics"
        case leastRequest = "least-request"
        case roundRobin = "round-robin"
        case pdSplit = "pd-split"
    }

    public var name: Name = .prefixCache
    /// Characters per hashed prompt chunk and the tokens such a chunk is worth (4 characters a
    /// token): turns matched chunks into cached tokens.
    public var chunkTokens: Double = 64
    /// prefix-cache: how many uncached prompt tokens one queued token ahead of us is worth.
    /// 0.5: a request's own uncached prompt counts twice, once for its own wait and once for the
    /// requests that will queue behind it there, while the work already queued delays only this
    /// one. At 1, a conversation whose system prompt was just sent to an engine went elsewhere
    /// to compute it again, as soon as the first request's work was queued there
    /// (Docs/benchmarks.md, "Against smg 1.13").
    public var loadWeight: Double = 0.5
    /// Prompt tokens assumed for a queued request whose size is unknown.
    public var queuedRequestTokens: Double = 512
    /// Token-equivalents one running sequence costs a newcomer (it slows every step a little).
    public var runningSequenceTokens: Double = 32
    /// Above this KV usage an instance's cache is under pressure: its queued work counts double.
    public var kvPressure: Double = 0.9
    /// Saturation: an instance with at least this many waiting requests and at least this KV
    /// usage takes no more; when all are saturated, `schedule` answers wait.
    public var saturatedWaiting: Int = 64
    public var saturatedKVUsage: Double = 0.98
    public var retryAfterMilliseconds: Int = 200
    /// Reports older than this are ignored (the scheduler's own in-flight count stands in).
    public var staleReportMilliseconds: Int = 5_000
    /// pd-split: a request with at most this many uncached prompt tokens on the decode instance
    /// it would go to is not split; that instance computes the prompt itself.
    public var pdLocalPrefillTokens: Int = 512
    /// pd-split: a prefill instance with this many prompts outstanding (sent by the scheduler, not
    /// yet computed) takes no more; while every one has, the decode side computes the prompt.
    public var pdMaxPrefillQueue: Int = 8
    /// prefix-cache and pd-split: credit the instance that holds a conversation up to its last
    /// answer with that answer too (it generated it, and engines cache generated tokens).
    public var answerAffinity = true
    /// prefix-cache and llm-metrics: prompt-token equivalents it costs to send a request for a
    /// LoRA adapter to an instance that does not hold it loaded (loading it, or waiting for one of
    /// the batch's adapter slots). 0 ignores where adapters are loaded.
    public var adapterLoadTokens: Double = 256
    /// expected-ttft, and the bound on prefix holds: an instance's prefill rate (computed prompt
    /// tokens a second) until its reports have taught the leader better.
    public var prefillTokensPerSecond: Double = 10_000
    /// expected-ttft: how much a second of stall imposed on each sequence decoding on an instance
    /// counts against a second of this request's own wait.
    public var decodeInterference: Double = 0.05
    /// expected-ttft: instances within this fraction of the least expected time are drawn at random.
    public var nearTieFraction: Double = 0.05
    /// prefix-cache and expected-ttft: the longest the leader holds a request whose prefix its
    /// instance is computing for a request sent moments before, until that computation has begun
    /// (`PrefixWarmup`), and never longer than computing the shared part again would take at the
    /// instance's prefill rate; 0 never holds.
    public var prefixHoldMilliseconds: Int = 2_000
    /// The shared prefix, in prompt tokens, worth a hold: a request is held only when at least
    /// this much of what it would find cached is still being computed, and a request computing
    /// less than this holds nothing back.
    public var prefixHoldMinTokens: Double = 1_024
    /// prefix-cache and expected-ttft: how long a gateway may send the request that continues an
    /// assigned one (a conversation's next turn) straight to the same instance, without asking,
    /// and tell the leader afterwards; 0: every request asks. The leader renews the grant for the
    /// turn after only if it would have chosen that instance itself (`ReuseGrants`). Off by
    /// default: measured, it helps near saturation and costs opening bursts (Docs/benchmarks.md).
    public var reuseMilliseconds: Int = 0

    /// Whether this policy holds a request whose prefix its instance is still computing
    /// (`PrefixWarmup`): the single-instance policies that route by prefix affinity. pd-split's
    /// prompts are computed on a prefill instance the hold does not watch.
    public var holdsForWarmingPrefixes: Bool { (name == .prefixCache || name == .expectedTTFT) && prefixHoldMilliseconds > 0 }

    /// Whether this policy lets gateways send a conversation's next turn where its last one went
    /// without asking: the single-instance policies that route by prefix affinity, whose choice
    /// for a continuation is almost always that instance.
    public var grantsReuse: Bool { (name == .prefixCache || name == .expectedTTFT) && reuseMilliseconds > 0 }

    /// `prefixHoldMinTokens` in whole prompt chunks.
    public var prefixHoldMinChunks: Int { max(1, Int((prefixHoldMinTokens / chunkTokens).rounded(.up))) }

    public init() {}

    public static let parameterKeys = [
        "chunk_tokens", "load_weight", "queued_request_tokens", "running_sequence_tokens", "kv_pressure",
        "saturated_waiting", "saturated_kv_usage", "retry_after_ms", "stale_report_ms", "pd_local_prefill_tokens", "pd_max_prefill_queue", "answer_affinity",
        "adapter_load_tokens", "prefill_tokens_per_second", "decode_interference", "near_tie_fraction",
        "prefix_hold_ms", "prefix_hold_min_tokens", "reuse_ms",
    ]

    /// Sets one parameter by its key (as `junction ctl set-policy` and the config file name it).
    public mutating func set(_ key: String, _ value: Double) throws(PolicyError) {
        func check(_ ok: Bool, _ why: String) throws(PolicyError) { if !ok { throw .invalidParameter(key: key, reason: why) } }
        try check(value.isFinite, "must be a finite number")
        switch key {
        case "chunk_tokens": try check(value >= 1, "must be at least 1"); chunkTokens = value
        case "load_weight": try check(value >= 0, "must not be negative"); loadWeight = value
        case "queued_request_tokens": try check(value >= 0, "must not be negative"); queuedRequestTokens = value
        case "running_sequence_tokens": try check(value >= 0, "must not be negative"); runningSequenceTokens = value
        case "kv_pressure": try check((0...1).contains(value), "must be from 0 to 1"); kvPressure = value
        case "saturated_waiting": try check(value >= 1, "must be at least 1"); saturatedWaiting = Int(value)
        case "saturated_kv_usage": try check((0...1).contains(value), "must be from 0 to 1"); saturatedKVUsage = value
        case "retry_after_ms": try check(value >= 1 && value <= 60_000, "must be from 1 to 60000"); retryAfterMilliseconds = Int(value)
        case "stale_report_ms": try check(value >= 100, "must be at least 100"); staleReportMilliseconds = Int(value)
        case "pd_local_prefill_tokens":
            try check(value >= 0 && value <= 10_000_000, "must be from 0 to 10000000"); pdLocalPrefillTokens = Int(value)
        case "pd_max_prefill_queue":
            try check(value >= 1 && value <= 1_000_000, "must be from 1 to 1000000"); pdMaxPrefillQueue = Int(value)
        case "answer_affinity": try check(value == 0 || value == 1, "must be 0 (off) or 1 (on)"); answerAffinity = value == 1
        case "adapter_load_tokens": try check(value >= 0 && value <= 10_000_000, "must be from 0 to 10000000"); adapterLoadTokens = value
        case "prefill_tokens_per_second":
            try check(value >= 1 && value <= 100_000_000, "must be from 1 to 100000000"); prefillTokensPerSecond = value
        case "decode_interference": try check(value >= 0 && value <= 100, "must be from 0 to 100"); decodeInterference = value
        case "near_tie_fraction": try check(value >= 0 && value <= 1, "must be from 0 to 1"); nearTieFraction = value
        case "prefix_hold_ms": try check(value >= 0 && value <= 10_000, "must be from 0 to 10000"); prefixHoldMilliseconds = Int(value)
        case "prefix_hold_min_tokens":
            try check(value >= 1 && value <= 10_000_000, "must be from 1 to 10000000"); prefixHoldMinTokens = value
        case "reuse_ms": try check(value >= 0 && value <= 600_000, "must be from 0 to 600000"); reuseMilliseconds = Int(value)
        default: throw .unknownParameter(key)
        }
    }

    public var parameters: [(key: String, value: Double)] {
        [
            ("chunk_tokens", chunkTokens), ("load_weight", loadWeight), ("queued_request_tokens", queuedRequestTokens),
            ("running_sequence_tokens", runningSequenceTokens), ("kv_pressure", kvPressure),
            ("saturated_waiting", Double(saturatedWaiting)), ("saturated_kv_usage", saturatedKVUsage),
            ("retry_after_ms", Double(retryAfterMilliseconds)), ("stale_report_ms", Double(staleReportMilliseconds)),
            ("pd_local_prefill_tokens", Double(pdLocalPrefillTokens)),
            ("pd_max_prefill_queue", Double(pdMaxPrefillQueue)), ("answer_affinity", answerAffinity ? 1 : 0),
            ("adapter_load_tokens", adapterLoadTokens), ("prefill_tokens_per_second", prefillTokensPerSecond),
            ("decode_interference", decodeInterference), ("near_tie_fraction", nearTieFraction),
            ("prefix_hold_ms", Double(prefixHoldMilliseconds)), ("prefix_hold_min_tokens", prefixHoldMinTokens),
            ("reuse_ms", Double(reuseMilliseconds)),
        ]
    }
}

public enum PolicyError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownPolicy(String)
    case unknownParameter(String)
    case invalidParameter(key: String, reason: String)

    public var description: String {
        switch self {
        case .unknownPolicy(let name):
            "unknown policy '\(name)'; known: \(PolicyConfiguration.Name.allCases.map(\.rawValue).joined(separator: ", "))"
        case .unknownParameter(let key):
            "unknown policy parameter '\(key)'; known: \(PolicyConfiguration.parameterKeys.joined(separator: ", "))"
        case .invalidParameter(let key, let reason): "policy parameter \(key) \(reason)"
        }
    }
}
