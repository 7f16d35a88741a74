/// The one table of which metric of each engine feeds which figure of the common load report
/// (Docs/agent.md prints it). Where an engine has renamed a metric, both names are listed, the
/// current first; the first one present in a scrape is used.
public struct MetricNames: Sendable {
    /// Gauges, summed over series (several `model_name` or `engine` label values).
    public var running: [String]
    public var waiting: [String]
    /// Gauge 0–1, averaged over series (each engine its own pool).
    public var kvUsage: [String]
    /// Counters; rates come from deltas between scrapes, summed over series, resets handled.
    public var promptTokens: [String]
    public var generationTokens: [String]
    /// Hit rate over the interval: Δhits / Δlookups (both counters, in tokens)…
    public var cacheHits: String?
    public var cacheLookups: String?
    /// …or, failing that, the engine's own gauge.
    public var cacheHitRateGauge: String?
    /// KV capacity in tokens: a gauge, or blocks × block size.
    public var capacityTokens: String?
    public var capacityBlocks: String?
    public var blockSize: String?
    /// vLLM publishes its cache configuration as labels of an info metric.
    public var cacheConfigInfo: String?
    /// vLLM says which LoRA adapters its requests use in `vllm:lora_requests_info` (`AdapterResidency`).
    public var loraInfo: Bool

    public static func of(_ family: EngineFamily) -> MetricNames {
        switch family {
        case .vllm: vllm
        case .sglang: sglang
        case .bladellm: bladellm
        }
    }

    public static let vllm = MetricNames(
        running: ["vllm:num_requests_running"], waiting: ["vllm:num_requests_waiting"],
        kvUsage: ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        promptTokens: ["vllm:prompt_tokens_total"], generationTokens: ["vllm:generation_tokens_total"],
        cacheHits: "vllm:prefix_cache_hits_total", cacheLookups: "vllm:prefix_cache_queries_total",
        cacheHitRateGauge: "vllm:gpu_prefix_cache_hit_rate", cacheConfigInfo: "vllm:cache_config_info",
        loraInfo: true)

    public static let sglang = MetricNames(
        running: ["sglang:num_running_reqs"], waiting: ["sglang:num_queue_reqs"], kvUsage: ["sglang:token_usage"],
        promptTokens: ["sglang:prompt_tokens_total"], generationTokens: ["sglang:generation_tokens_total"],
        cacheHits: "sglang:cached_tokens_total", cacheLookups: "sglang:prompt_tokens_total",
        cacheHitRateGauge: "sglang:cache_hit_rate", capacityTokens: "sglang:max_total_num_tokens")

    public static let bladellm = MetricNames(
        running: ["running_batch_size", "decode_batch_size_mean"], waiting: ["wait_queue_size", "wait_queue_size_mean"],
        kvUsage: ["block_usage_gpu", "block_usage_gpu_mean"],
        promptTokens: ["prompt_tokens_total"], generationTokens: ["generation_tokens_total"],
        cacheHits: "cached_prompt_tokens_total", cacheLookups: "prompt_tokens_total",
        capacityBlocks: "num_gpu_blocks", blockSize: "block_size")

    static let bladeMarkers: Set<String> = [
        "running_batch_size", "decode_batch_size_mean", "wait_queue_size", "wait_queue_size_mean", "block_usage_gpu",
        "block_usage_gpu_mean",
    ]

    public init(
        running: [String], waiting: [String], kvUsage: [String], promptTokens: [String], generationTokens: [String],
        cacheHits: String? = nil, cacheLookups: String? = nil, cacheHitRateGauge: String? = nil, capacityTokens: String? = nil,
        capacityBlocks: String? = nil, blockSize: String? = nil, cacheConfigInfo: String? = nil,
        loraInfo: Bool = false
    ) {
        self.loraInfo = loraInfo
        self.running = running
        self.waiting = waiting
        self.kvUsage = kvUsage
        self.promptTokens = promptTokens
        self.generationTokens = generationTokens
        self.cacheHits = cacheHits
        self.cacheLookups = cacheLookups
        self.cacheHitRateGauge = cacheHitRateGauge
        self.capacityTokens = capacityTokens
        self.capacityBlocks = capacityBlocks
        self.blockSize = blockSize
        self.cacheConfigInfo = cacheConfigInfo
    }
}
