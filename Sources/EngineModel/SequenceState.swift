/// A request inside the core: its tokens so far, its KV blocks and its progress.
struct SequenceState {
    let id: EngineRequestID
    let promptCount: Int
    /// Prompt followed by the tokens generated so far.
    var tokens: [UInt32]
    let targetOutput: Int
    let finishReason: FinishReason
    var plan: OutputPlan
    /// The LoRA adapter it runs with; nil for the base model.
    var adapter: String? = nil
    /// Its scheduling priority (lower first), used under `SchedulingPolicy.priority`.
    var priority = 0
    /// The first block's parent in the hash chain: 0 for the base model, the adapter's own value
    /// otherwise (vLLM keys every cached block by its adapter too: KV computed with one adapter
    /// is no use to another).
    var hashSeed: UInt64 = 0
    /// Tokens whose KV is in `blocks` (computed in an earlier step or found in the cache).
    var computed = 0
    var blocks: [Int32] = []
    /// Chained hashes of the full blocks of `tokens` known so far.
    var blockHashes: [UInt64] = []
    /// How many of `blocks` carry a registered hash.
    var registeredBlocks = 0
    var cachedTokens: Int?
    var prefillCounted = false

    var outputCount: Int { tokens.count - promptCount }
    var isFinished: Bool { outputCount >= targetOutput }

    /// Extends `blockHashes` to every full block of `tokens` up to `limit` tokens.
    mutating func hashFullBlocks(blockSize: Int, upTo limit: Int) {
        let full = min(limit, tokens.count) / blockSize
        while blockHashes.count < full {
            let index = blockHashes.count
            let parent = blockHashes.last ?? hashSeed
            let slice = tokens[(index * blockSize)..<((index + 1) * blockSize)]
            blockHashes.append(KVCache.chainHash(parent: parent, tokens: slice))
        }
    }
}
