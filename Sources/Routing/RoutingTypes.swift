/// What a policy knows about one instance when it decides.
public struct RoutingInstance: Sendable, Equatable {
    public enum State: Sendable, Equatable { case up, draining, down }
    public enum Role: Sendable, Equatable { case both, prefill, decode }

    public var id: String
    /// The base model's name; `aliases` are its other names, `adapters` the LoRA adapters the
    /// engine serves on top of it (each asked for by its own name).
    public var model: String
    public var aliases: [String]
    public var adapters: [String]
    public var state: State
    public var role: Role
    /// KV-cache size in tokens, when the engine tells.
    public var kvCapacityTokens: Int?
    /// The engine's load from its agent's latest report; nil until the first report arrives.
    public var load: EngineLoad?
    /// Requests the scheduler sent here and has not yet seen finish.
    public var inFlight: Int
    /// Of `inFlight`, those sent after the latest report was taken (the report cannot know them).
    public var inFlightSinceReport: Int
    /// The prompt tokens those requests compute here (their uncached part), when the scheduler
    /// counted them; nil: unknown, each counts as `queued_request_tokens`.
    public var sentSinceReportTokens: Double?
    /// The leader's estimate (`PrefillEstimate`): prompt tokens still to compute for requests
    /// already sent here, and how many it computes a second (nil: not yet learned).
    public var prefillBacklogTokens: Double = 0
    public var prefillTokensPerSecond: Double?

    public init(
        id: String, model: String, aliases: [String] = [], adapters: [String] = [], state: State = .up, role: Role = .both,
        kvCapacityTokens: Int? = nil, load: EngineLoad? = nil, inFlight: Int = 0, inFlightSinceReport: Int = 0
    ) {
        self.id = id
        self.model = model
        self.aliases = aliases
        self.adapters = adapters
        self.state = state
        self.role = role
        self.kvCapacityTokens = kvCapacityTokens
        self.load = load
        self.inFlight = inFlight
        self.inFlightSinceReport = inFlightSinceReport
    }

    /// Whether a request for `name` can be sent here.
    public func serves(_ name: String) -> Bool { model == name || aliases.contains(name) || adapters.contains(name) }

    /// Whether `name` is one of the LoRA adapters served here (not the base model by any name).
    public func isAdapter(_ name: String) -> Bool { name != model && !aliases.contains(name) && adapters.contains(name) }
}

/// An engine's load, normalised from its own metrics by its agent.
public struct EngineLoad: Sendable, Equatable {
    public var running: Int
    public var waiting: Int
    /// 0...1
    public var kvUsage: Double
    public var promptTokensPerSecond: Double
    public var generationTokensPerSecond: Double
    /// How old the report is, in milliseconds; stale reports count for less.
    public var ageMilliseconds: Int
    /// LoRA adapters the engine most likely holds loaded (in use now, or most recently).
    public var loadedAdapters: [String]

    public init(
        running: Int, waiting: Int, kvUsage: Double, promptTokensPerSecond: Double = 0,
        generationTokensPerSecond: Double = 0, ageMilliseconds: Int = 0, loadedAdapters: [String] = []
    ) {
        self.loadedAdapters = loadedAdapters
        self.running = running
        self.waiting = waiting
        self.kvUsage = kvUsage
        self.promptTokensPerSecond = promptTokensPerSecond
        self.generationTokensPerSecond = generationTokensPerSecond
        self.ageMilliseconds = ageMilliseconds
    }
}

/// What the gateway knows about a request when it asks.
public struct RoutingRequest: Sendable, Equatable {
    public var model: String
    /// Chained hashes of fixed-size chunks of the canonical prompt text.
    public var prefixHashes: [UInt64]
    /// The gateway's estimate of prompt tokens.
    public var promptTokens: Int
    /// Instances that already failed this request.
    public var exclude: Set<String>
    /// Chat: the chunks of `prefixHashes` the last assistant message spans. An instance holding
    /// the chain up to its start most likely generated it, so holds it too.
    public var lastAnswerChunks: Range<Int>?
    /// The instance that served this request's session (conversation) last, if it carries one:
    /// preferred among instances that cost the same.
    public var sessionInstance: String?
    /// Room an instance must have to take this request (its priority class's, flow control):
    /// nil for the saturation rule alone.
    public var headroom: RoutingHeadroom?

    public init(
        model: String, prefixHashes: [UInt64], promptTokens: Int, exclude: Set<String> = [], lastAnswerChunks: Range<Int>? = nil,
        sessionInstance: String? = nil, headroom: RoutingHeadroom? = nil
    ) {
        self.sessionInstance = sessionInstance
        self.headroom = headroom
        self.model = model
        self.prefixHashes = prefixHashes
        self.promptTokens = promptTokens
        self.exclude = exclude
        self.lastAnswerChunks = lastAnswerChunks
    }
}

/// Room an instance must have for a request of a class that only uses spare capacity: at most
/// `maxWaiting` requests waiting in it by its report, KV usage at most `maxKVUsage`, and (when
/// `maxRunning` is not 0) at most `maxRunning` sequences running with this one, counting those
/// sent since the report. Requests sent since the report do not count as waiting: most start
/// running at once, and counting them would let one such request through per report.
/// And, when `maxPrefillSeconds` is not 0, less prompt work sent there and not yet computed
/// (`prefillBacklogTokens` at the instance's learned rate) than that: what a request arriving next
/// would wait behind, so a class bounded here cannot delay the requests of the classes above it.
public struct RoutingHeadroom: Sendable, Equatable {
    public var maxWaiting: Int
    public var maxKVUsage: Double
    public var maxRunning: Int
    public var maxPrefillSeconds: Double

    public init(maxWaiting: Int, maxKVUsage: Double, maxRunning: Int = 0, maxPrefillSeconds: Double = 0) {
        self.maxWaiting = maxWaiting
        self.maxKVUsage = maxKVUsage
        self.maxRunning = maxRunning
        self.maxPrefillSeconds = maxPrefillSeconds
    }
}

public enum RoutingDecision: Sendable, Equatable {
    /// Send it there; `cachedChunks` leading chunks are believed cached on that instance.
    case assign(instance: String, cachedChunks: Int)
    /// pd-split: compute the prompt on `prefill` (which holds `cachedChunks` of it) and hand the
    /// KV cache to `decode`, which generates.
    case assignPair(prefill: String, decode: String, cachedChunks: Int)
    /// Every eligible instance is saturated: ask again after the hint.
    case wait(retryAfterMilliseconds: Int, reason: String)
    /// No instance can serve this model at all.
    case noInstance(reason: String)
}
