import AgentCore
import Foundation
import PromText
import Testing

private func fixture(_ name: String) throws -> Exposition {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    return try PromTextParser.parse(try String(contentsOf: root.appendingPathComponent("Fixtures/\(name)"), encoding: .utf8))
}

@Suite struct AgentCoreTests {
    @Test func theRealVLLMPageIsRecognisedAndNormalised() throws {
        let page = try fixture("vllm-0.32.0-cpu-metrics.txt")
        #expect(EngineFamily.detect(page) == .vllm)
        var normaliser = LoadNormaliser(family: .vllm)
        let load = normaliser.normalise(page, at: 0)
        #expect(load.running == 0 && load.waiting == 0 && load.kvUsage == 0)
        #expect(load.kvCapacityTokens == 524_288 && load.kvBlockSize == 128)
    }

    @Test func detectionByMetricsAndByOwner() throws {
        #expect(EngineFamily.detect(try PromTextParser.parse("sglang:num_running_reqs 1\n")) == .sglang)
        #expect(EngineFamily.detect(try PromTextParser.parse("wait_queue_size 1\nblock_usage_gpu 0.5\n")) == .bladellm)
        #expect(EngineFamily.detect(try PromTextParser.parse("process_cpu_seconds_total 1\n")) == nil)
        #expect(EngineFamily.detect(ownedBy: "vllm") == .vllm && EngineFamily.detect(ownedBy: "sglang") == .sglang)
        #expect(EngineFamily(configName: "BladeLLM") == .bladellm && EngineFamily(configName: "tgi") == nil)
    }

    @Test func seriesAreSummedAndCountersBecomeRatesAcrossAReset() throws {
        func page(_ running: (Int, Int), _ prompt: (Int, Int), hits: Int, queries: Int, legacy: Bool = false) throws -> Exposition {
            let usage = legacy ? "vllm:gpu_cache_usage_perc" : "vllm:kv_cache_usage_perc"
            return try PromTextParser.parse(
                """
                # TYPE vllm:num_requests_running gauge
                vllm:num_requests_running{engine="0",model_name="a"} \(running.0)
                vllm:num_requests_running{engine="1",model_name="a"} \(running.1)
                vllm:num_requests_waiting{engine="0",model_name="a"} 2
                vllm:num_requests_waiting{engine="1",model_name="a"} 3
                \(usage){engine="0",model_name="a"} 0.2
                \(usage){engine="1",model_name="a"} 0.6
                # TYPE vllm:prompt_tokens_total counter
                vllm:prompt_tokens_total{engine="0",model_name="a"} \(prompt.0)
                vllm:prompt_tokens_total{engine="1",model_name="a"} \(prompt.1)
                vllm:generation_tokens_total{engine="0",model_name="a"} 0
                vllm:prefix_cache_hits_total{engine="0",model_name="a"} \(hits)
                vllm:prefix_cache_queries_total{engine="0",model_name="a"} \(queries)
                """)
        }
        var normaliser = LoadNormaliser(family: .vllm)
        let first = normaliser.normalise(try page((3, 4), (1000, 2000), hits: 0, queries: 0), at: 10)
        #expect(first.running == 7 && first.waiting == 5 && abs(first.kvUsage - 0.4) < 1e-9)
        #expect(first.promptTokensPerSecond == 0)  // no interval yet
        let second = normaliser.normalise(try page((1, 1), (1500, 2500), hits: 300, queries: 1000), at: 10.5)
        #expect(second.promptTokensPerSecond == 2000)  // (500 + 500) / 0.5 s
        #expect(abs(second.prefixCacheHitRate - 0.3) < 1e-9)
        // Engine 1 restarted: its counter fell from 2500 to 100, which counts as 100 new tokens.
        let third = normaliser.normalise(try page((0, 0), (1600, 100), hits: 300, queries: 1000, legacy: true), at: 11)
        #expect(third.promptTokensPerSecond == 400)  // (100 + 100) / 0.5 s
        #expect(abs(third.kvUsage - 0.4) < 1e-9)  // the pre-v1 name
    }

    @Test func sglangAndBladeLLMCapacityAndHitRates() throws {
        var sglang = LoadNormaliser(family: .sglang)
        let s = sglang.normalise(
            try PromTextParser.parse(
                "sglang:num_running_reqs 4\nsglang:num_queue_reqs 1\nsglang:token_usage 0.5\nsglang:max_total_num_tokens 100000\nsglang:cache_hit_rate 0.25\n"),
            at: 0)
        #expect(s.running == 4 && s.waiting == 1 && s.kvUsage == 0.5 && s.kvCapacityTokens == 100_000 && s.prefixCacheHitRate == 0.25)
        var blade = LoadNormaliser(family: .bladellm)
        _ = blade.normalise(try PromTextParser.parse("prompt_tokens_total 100\ncached_prompt_tokens_total 0\n"), at: 0)
        let b = blade.normalise(
            try PromTextParser.parse(
                "running_batch_size 2\nwait_queue_size 7\nblock_usage_gpu 0.9\nnum_gpu_blocks 1000\nblock_size 16\nprompt_tokens_total 300\ncached_prompt_tokens_total 150\n"),
            at: 1)
        #expect(b.running == 2 && b.waiting == 7 && b.kvCapacityTokens == 16_000 && b.kvBlockSize == 16)
        #expect(b.promptTokensPerSecond == 200 && b.prefixCacheHitRate == 0.75)
    }

    @Test func healthNeedsARunOfFailuresAndOneSuccess() {
        var tracker = HealthTracker(failureThreshold: 2)
        #expect(!tracker.record(.failed) && tracker.health == .unknown)
        #expect(tracker.record(.ok) && tracker.health == .healthy)
        #expect(!tracker.record(.failed) && tracker.health == .healthy)
        #expect(tracker.record(.unreachable) && tracker.health == .unreachable)
        #expect(tracker.record(.failed) && tracker.health == .unhealthy)
        #expect(tracker.record(.ok) && tracker.health == .healthy)
        #expect(tracker.record(.refused) && tracker.health == .unreachable)  // nothing listens: no need to wait
    }
}
