import EngineModel

/// /metrics in the impersonated engine's own names, types and labels. The names per engine
/// are listed, with their sources, in Docs/engine-sim.md; the vLLM ones are checked in a test
/// against a real vLLM 0.32.0 exposition.
public struct MetricsRenderer: Sendable {
    public enum VLLMGeneration: String, Sendable, CaseIterable {
        /// vLLM's V1 engine (0.8 and later, as recorded from 0.32.0): `kv_cache_usage_perc`,
        /// `engine` and `model_name` labels.
        case current
        /// vLLM's V0 engine (0.7.x, the seed's version): `gpu_cache_usage_perc`, `model_name` only.
        case legacy
    }

    let dialect: Dialect
    let servedModelName: String
    let vllmGeneration: VLLMGeneration
    let startTime: Double
    /// `/metrics?name[]=…`: the sample names asked for (nil: the whole page).
    var only: Set<String>? = nil

    func render(_ snapshot: EngineSnapshot, recent: RecentActivity) -> String {
        let engine = switch dialect {
        case .vllm: vllm(snapshot)
        case .sglang: sglang(snapshot, recent: recent)
        case .bladellm: bladellm(snapshot, recent: recent)
        }
        return snapshot.handoff.isActive ? engine + disaggregation(snapshot.handoff) : engine
    }

    /// The simulator's own families for prefill/decode disaggregation: each role's queue and
    /// what crossed between the roles.
    private func disaggregation(_ h: HandoffSnapshot) -> String {
        var w = ExpositionWriter(common: [("model_name", servedModelName)], createdTimestamp: nil, only: only)
        w.gauges(
            "junction_sim_role", "The instance's part in prefill/decode disaggregation (1 for its role).",
            SimRole.allCases.map { ([("role", $0.rawValue)], $0 == h.role ? 1 : 0) })
        w.gauge("junction_sim_kv_awaiting_requests", "Decode side: requests waiting for their prompt's KV from a prefill instance.", Double(h.awaitingKV))
        w.gauge("junction_sim_kv_handoffs_pending", "Prefill side: computed prompts whose KV waits for its decode instance.", Double(h.pendingHandoffs))
        w.counter("junction_sim_kv_prefills_total", "Prefill side: prompts computed for a decode instance.", Double(h.prefilledForDecode))
        w.counter(
            "junction_sim_kv_blocks_total", "KV blocks handed over, by direction.",
            [([("direction", "received")], Double(h.receivedBlocks)), ([("direction", "sent")], Double(h.sentBlocks))])
        w.counter("junction_sim_kv_transfers_total", "Decode side: KV transfers completed.", Double(h.transfers))
        w.counter("junction_sim_kv_transfer_seconds_total", "Decode side: wall seconds spent receiving KV.", h.transferSeconds)
        w.counter("junction_sim_kv_fetch_failures_total", "Decode side: KV fetches that failed (vLLM: prompt recomputed; SGLang: request failed).", Double(h.fetchFailures))
        w.counter("junction_sim_kv_handoffs_expired_total", "Prefill side: computed prompts never fetched before the hand-off timeout.", Double(h.expiredHandoffs))
        return w.text
    }

    private func vllm(_ s: EngineSnapshot) -> String {
        let legacy = vllmGeneration == .legacy
        var w = ExpositionWriter(
            common: legacy ? [("model_name", servedModelName)] : [("engine", "0"), ("model_name", servedModelName)],
            createdTimestamp: startTime, only: only)
        let c = s.counters
        let m = s.metrics
        w.gauge("vllm:num_requests_running", "Number of requests in model execution batches.", Double(s.running))
        w.gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", Double(s.waiting))
        if legacy {
            w.gauge("vllm:num_requests_swapped", "Number of requests swapped to CPU.", 0)
            w.gauge("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", s.kvUsage)
            w.gauge("vllm:cpu_cache_usage_perc", "CPU KV-cache usage. 1 means 100 percent usage.", 0)
            w.gauge(
                "vllm:gpu_prefix_cache_hit_rate", "GPU prefix cache block hit rate.",
                c.prefixQueriedTokens == 0 ? 0 : Double(c.prefixHitTokens) / Double(c.prefixQueriedTokens))
        } else {
            w.gauges(
                "vllm:num_requests_waiting_by_reason",
                "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling capacity; 'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked status). Sum of all reasons equals vllm:num_requests_waiting.",
                [([("reason", "capacity")], Double(s.waiting - s.handoff.awaitingKV)), ([("reason", "deferred")], Double(s.handoff.awaitingKV))])
            w.gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s.kvUsage)
            w.counter(
                "vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.",
                Double(c.prefixQueriedTokens))
            w.counter(
                "vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
                Double(c.prefixHitTokens))
        }
        w.counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", Double(c.preemptions))
        w.counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", Double(c.promptTokens))
        if !legacy {
            w.counter(
                "vllm:prompt_tokens_cached_total", "Number of cached prompt tokens (local + external).",
                Double(c.promptCachedTokens))
        }
        w.counter("vllm:generation_tokens_total", "Number of generation tokens processed.", Double(c.generationTokens))
        let reasons: [String] = legacy ? ["stop", "length", "abort"] : ["stop", "length", "abort", "error", "repetition"]
        w.counter(
            "vllm:request_success_total", "Count of successfully processed requests.",
            reasons.map { reason in
                ([("finished_reason", reason)], Double(FinishReason(rawValue: reason).map { m.finished[$0] ?? 0 } ?? 0))
            })
        w.histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", m.timeToFirstToken)
        if legacy {
            w.histogram("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds.", m.interTokenLatency)
        } else {
            w.histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", m.interTokenLatency)
        }
        w.histogram("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", m.endToEnd)
        w.histogram("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", m.queueTime)
        w.histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.", m.promptTokens)
        w.histogram("vllm:request_generation_tokens", "Number of generation tokens processed.", m.generationTokens)
        w.histogram("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", m.maxTokensParam)
        let info = ExpositionWriter(common: [], createdTimestamp: nil, only: only)
        var cacheInfo = info
        cacheInfo.gauge(
            "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", 1,
            labels: [
                ("block_size", String(s.profile.blockSize)), ("cache_dtype", "auto"),
                ("enable_prefix_caching", "True"), ("gpu_memory_utilization", "0.9"),
                ("kv_cache_size_tokens", String(s.profile.kvBlocks * s.profile.blockSize)),
                ("num_cpu_blocks", "None"), ("num_gpu_blocks", String(s.profile.kvBlocks)),
                ("num_gpu_blocks_override", "None"), ("prefix_caching_hash_algo", "sha256"),
                ("sliding_window", "None"),
            ] + (legacy ? [] : [("engine", "0")]))
        var loraInfo = info
        if s.loraEnabled {
            // Oldest first, as prometheus_client lists them (in the order first set).
            loraInfo.gauges(
                "vllm:lora_requests_info", "Running stats on lora requests.",
                s.lora.series.sorted { $0.value < $1.value }.map { adapters, time in
                    (
                        [
                            ("max_lora", String(s.maxLoras)), ("running_lora_adapters", adapters.running.joined(separator: ",")),
                            ("waiting_lora_adapters", adapters.waiting.joined(separator: ",")),
                        ], time
                    )
                })
        }
        return w.text + cacheInfo.text + loraInfo.text
    }

    private func sglang(_ s: EngineSnapshot, recent: RecentActivity) -> String {
        var w = ExpositionWriter(common: [("model_name", servedModelName)], createdTimestamp: nil, only: only)
        let c = s.counters
        let m = s.metrics
        let capacity = Double(s.profile.kvBlocks * s.profile.blockSize)
        w.gauge("sglang:num_running_reqs", "The number of running requests.", Double(s.running))
        w.gauge("sglang:num_used_tokens", "The number of used tokens.", Double(s.usedTokens))
        w.gauge("sglang:token_usage", "The token usage.", s.kvUsage)
        w.gauge("sglang:gen_throughput", "The generation throughput (token/s).", recent.generatedPerSecond)
        w.gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.", Double(s.waiting))
        w.gauge(
            "sglang:cache_hit_rate", "The prefix cache hit rate.",
            c.prefixQueriedTokens == 0 ? 0 : Double(c.prefixHitTokens) / Double(c.prefixQueriedTokens))
        w.gauge("sglang:max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.", capacity)
        w.gauge("sglang:max_running_requests", "Maximum running requests.", Double(s.profile.maxRunningSequences))
        w.counter("sglang:prompt_tokens_total", "Number of prefill tokens processed.", Double(c.promptTokens))
        w.counter("sglang:generation_tokens_total", "Number of generation tokens processed.", Double(c.generationTokens))
        w.counter("sglang:cached_tokens_total", "Number of cached prompt tokens.", Double(c.promptCachedTokens))
        w.counter(
            "sglang:num_requests_total", "Number of requests processed.",
            Double(m.finished.values.reduce(0, +)))
        w.counter("sglang:num_aborted_requests_total", "Number of requests aborted.", Double(m.finished[.abort] ?? 0))
        w.histogram("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", m.timeToFirstToken)
        w.histogram("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", m.interTokenLatency)
        w.histogram("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", m.endToEnd)
        w.histogram("sglang:queue_time_seconds", "Histogram of queueing time in seconds.", m.queueTime)
        return w.text
    }

    private func bladellm(_ s: EngineSnapshot, recent: RecentActivity) -> String {
        var w = ExpositionWriter(common: [], createdTimestamp: nil, only: only)
        w.gauge("decode_batch_size_mean", "Mean number of sequences in a decode batch over the last window.", recent.meanDecodeBatch)
        w.gauge("wait_queue_size_mean", "Mean number of requests waiting over the last window.", recent.meanWaiting)
        w.gauge("block_usage_gpu_mean", "Mean fraction of GPU KV blocks in use over the last window.", recent.meanKVUsage)
        w.gauge("tps_total", "Prompt and generated tokens per second over the last window.", recent.tokensPerSecond)
        w.gauge("tps_out", "Generated tokens per second over the last window.", recent.generatedPerSecond)
        w.gauge("running_batch_size", "Sequences running now.", Double(s.running))
        w.gauge("wait_queue_size", "Requests waiting now.", Double(s.waiting))
        w.gauge("block_usage_gpu", "Fraction of GPU KV blocks in use now.", s.kvUsage)
        w.gauge("num_gpu_blocks", "GPU KV blocks in all.", Double(s.profile.kvBlocks))
        w.gauge("block_size", "Tokens per KV block.", Double(s.profile.blockSize))
        w.counter("prompt_tokens_total", "Prompt tokens processed.", Double(s.counters.promptTokens))
        w.counter("cached_prompt_tokens_total", "Prompt tokens found in the prefix cache.", Double(s.counters.promptCachedTokens))
        w.counter("generation_tokens_total", "Tokens generated.", Double(s.counters.generationTokens))
        w.histogram("ttft_seconds", "Time to first token in seconds.", s.metrics.timeToFirstToken)
        return w.text
    }
}
