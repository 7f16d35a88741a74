/// One request as the engine core sees it: prompt tokens and how far generation may go.
public struct GenerationRequest: Sendable {
    public var promptTokens: [UInt32]
    /// The most tokens to generate (already resolved: the client's `max_tokens`, or what the
    /// context window leaves).
    public var maxTokens: Int
    /// Generate exactly `maxTokens`, ignoring where the model would stop (vLLM's `ignore_eos`).
    public var ignoreEOS: Bool
    /// Fixes the answer's tokens and natural length.
    public var seed: UInt64
    /// The LoRA adapter to apply, by name; nil for the base model.
    public var adapter: String?
    /// vLLM's request `priority` under `--scheduling-policy priority`: lower values are scheduled
    /// first, and preempted last. 0 unless the client sets it.
    public var priority: Int

    public init(
        promptTokens: [UInt32], maxTokens: Int, ignoreEOS: Bool = false, seed: UInt64, adapter: String? = nil, priority: Int = 0
    ) {
        self.adapter = adapter
        self.priority = priority
        self.promptTokens = promptTokens
        self.maxTokens = maxTokens
        self.ignoreEOS = ignoreEOS
        self.seed = seed
    }
}

public enum FinishReason: String, Sendable {
    case stop, length, abort
}

public typealias EngineRequestID = Int

/// What a step produced for one request, in order.
public enum EngineEvent: Sendable, Equatable {
    /// The request left the waiting queue for the first time; `cachedTokens` of its prompt were
    /// found in the prefix cache.
    case scheduled(EngineRequestID, cachedTokens: Int)
    case token(EngineRequestID, UInt32)
    case finished(EngineRequestID, FinishReason, usage: TokenUsage)
}

public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedTokens: Int
    public init(promptTokens: Int, completionTokens: Int, cachedTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
    }
}

/// One step's work and cost, for the shell to wait out and for the engine's metrics.
public struct StepResult: Sendable {
    public var duration: Double
    public var prefillTokens: Int
    public var decodeSequences: Int
    public var sequences: Int
    public var events: [EngineEvent]
    /// The adapters of the requests the step ran and of those left waiting, as the scheduler saw
    /// them (vLLM's stats come from its schedule, so a request finishing in this step counts as
    /// running). Empty when no request has an adapter.
    public var runningAdapters: [String] = []
    public var waitingAdapters: [String] = []
}
