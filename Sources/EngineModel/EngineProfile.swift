/// The performance parameters of one simulated model on one kind of GPU. Times are model time,
/// in seconds (the `--speed` factor of the shell divides them). Each profile's derivation and
/// its check against the seed's published figures are in Docs/engine-sim.md.
public struct EngineProfile: Sendable, Equatable {
    public var name: String
    public var summary: String
    public var servedModelName: String
    public var maxModelLength: Int
    public var blockSize: Int
    public var kvBlocks: Int
    /// Continuous batching limits: sequences per step and tokens per step (vLLM's
    /// `max_num_seqs` and `max_num_batched_tokens`); prefills beyond the budget are chunked.
    public var maxRunningSequences: Int
    public var stepTokenBudget: Int
    /// step = stepBase + prefillPerToken × uncached prompt tokens in the step
    ///      + decodePerSequence × sequences in the step + attentionPerKToken × context tokens / 1000
    public var stepBase: Double
    public var prefillPerToken: Double
    public var decodePerSequence: Double
    public var attentionPerKToken: Double
    /// Where the model stops by itself when `max_tokens` allows: log-normal median and sigma.
    public var outputMedianTokens: Double
    public var outputSigma: Double

    public init(
        name: String, summary: String, servedModelName: String, maxModelLength: Int,
        blockSize: Int = 16, kvBlocks: Int, maxRunningSequences: Int, stepTokenBudget: Int,
        stepBase: Double, prefillPerToken: Double, decodePerSequence: Double,
        attentionPerKToken: Double, outputMedianTokens: Double, outputSigma: Double
    ) {
        self.name = name
        self.summary = summary
        self.servedModelName = servedModelName
        self.maxModelLength = maxModelLength
        self.blockSize = blockSize
        self.kvBlocks = kvBlocks
        self.maxRunningSequences = maxRunningSequences
        self.stepTokenBudget = stepTokenBudget
        self.stepBase = stepBase
        self.prefillPerToken = prefillPerToken
        self.decodePerSequence = decodePerSequence
        self.attentionPerKToken = attentionPerKToken
        self.outputMedianTokens = outputMedianTokens
        self.outputSigma = outputSigma
    }

    /// The duration of one step in model seconds.
    public func stepDuration(prefillTokens: Int, sequences: Int, contextTokens: Int) -> Double {
        stepBase + prefillPerToken * Double(prefillTokens) + decodePerSequence * Double(sequences)
            + attentionPerKToken * Double(contextTokens) / 1000
    }

    /// Every parameter in range; otherwise the name of the first one that is not.
    public func validate() throws(EngineModelError) {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws(EngineModelError) {
            if !ok { throw .invalidProfile(key: key, reason: reason) }
        }
        try check(blockSize > 0, "block_size", "must be positive")
        try check(kvBlocks > 0, "kv_blocks", "must be positive")
        try check(maxModelLength > 1, "max_model_len", "must be above 1")
        try check(
            maxModelLength <= kvBlocks * blockSize, "max_model_len",
            "\(maxModelLength) tokens do not fit in \(kvBlocks) blocks of \(blockSize) tokens")
        try check(maxRunningSequences > 0, "max_num_seqs", "must be positive")
        try check(
            stepTokenBudget < kvBlocks * blockSize, "max_num_batched_tokens",
            "must be below the cache's \(kvBlocks * blockSize) tokens")
        try check(stepTokenBudget >= maxRunningSequences, "max_num_batched_tokens", "must be at least max_num_seqs")
        try check(stepBase > 0, "step_base", "must be positive")
        try check(prefillPerToken >= 0 && decodePerSequence >= 0 && attentionPerKToken >= 0, "step costs", "must not be negative")
        try check(outputMedianTokens >= 1 && outputSigma >= 0, "output length", "median ≥ 1 and sigma ≥ 0")
    }
}

public enum EngineModelError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidProfile(key: String, reason: String)
    case unknownProfile(String)
    case promptTooLong(promptTokens: Int, maxTokens: Int, maxModelLength: Int)
    case emptyPrompt

    public var description: String {
        switch self {
        case .invalidProfile(let key, let reason): return "profile parameter \(key) \(reason)"
        case .unknownProfile(let name):
            return "unknown profile '\(name)'; known: \(EngineProfile.all.map(\.name).joined(separator: ", "))"
        case .promptTooLong(let prompt, let maxTokens, let limit):
            return "This model's maximum context length is \(limit) tokens. However, you requested "
                + "\(prompt + maxTokens) tokens (\(prompt) in the messages, \(maxTokens) in the completion). "
                + "Please reduce the length of the messages or completion."
        case .emptyPrompt: return "The prompt must not be empty."
        }
    }
}
