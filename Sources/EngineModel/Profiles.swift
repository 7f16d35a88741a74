/// The built-in profiles. The figures are derived in Docs/engine-sim.md from each model's
/// architecture (KV bytes per token, weight bytes, FLOPs per token) and each GPU's memory
/// bandwidth and compute, and checked there against the seed's published results.
extension EngineProfile {
    public static let all: [EngineProfile] = [tiny, qwen7bH100, qwen7bA100, qwen7bL20, qwen32bH100x2, qwen32bL20x2]

    public static func named(_ name: String) throws(EngineModelError) -> EngineProfile {
        guard let profile = all.first(where: { $0.name == name }) else { throw .unknownProfile(name) }
        return profile
    }

    /// Small and quick, for tests: a few hundred blocks so eviction and queueing are easy to reach.
    public static let tiny = EngineProfile(
        name: "tiny", summary: "test profile: 256 blocks, 2 ms steps",
        servedModelName: "tiny", maxModelLength: 2048, kvBlocks: 256,
        maxRunningSequences: 64, stepTokenBudget: 2048,
        stepBase: 0.002, prefillPerToken: 0.000_01, decodePerSequence: 0.000_02,
        attentionPerKToken: 0.000_01, outputMedianTokens: 24, outputSigma: 0.6)

    /// DeepSeek-R1-Distill-Qwen-7B (Qwen2 7B: 28 layers, 4 KV heads × 128, bf16) on one
    /// H100 SXM 80 GB (3.35 TB/s, 989 dense bf16 TFLOP/s), gpu_memory_utilization 0.9.
    public static let qwen7bH100 = EngineProfile(
        name: "7b-h100", summary: "Distill-Qwen-7B, bf16, one H100 80 GB",
        servedModelName: "DeepSeek-R1-Distill-Qwen-7B", maxModelLength: 32_768, kvBlocks: 56_000,
        maxRunningSequences: 256, stepTokenBudget: 8192,
        stepBase: 0.0062, prefillPerToken: 0.000_032, decodePerSequence: 0.000_06,
        attentionPerKToken: 0.000_022, outputMedianTokens: 900, outputSigma: 0.8)

    /// The same model on one A100 SXM 80 GB (2.04 TB/s, 312 dense bf16 TFLOP/s): of the three
    /// 7B profiles, the closest to the seed's published 7B figures (see Docs/engine-sim.md).
    public static let qwen7bA100 = EngineProfile(
        name: "7b-a100", summary: "Distill-Qwen-7B, bf16, one A100 80 GB",
        servedModelName: "DeepSeek-R1-Distill-Qwen-7B", maxModelLength: 32_768, kvBlocks: 56_000,
        maxRunningSequences: 256, stepTokenBudget: 8192,
        stepBase: 0.0098, prefillPerToken: 0.000_097, decodePerSequence: 0.000_06,
        attentionPerKToken: 0.000_035, outputMedianTokens: 900, outputSigma: 0.8)

    /// The same model on one L20 48 GB (864 GB/s, 119.5 dense bf16 TFLOP/s).
    public static let qwen7bL20 = EngineProfile(
        name: "7b-l20", summary: "Distill-Qwen-7B, bf16, one L20 48 GB",
        servedModelName: "DeepSeek-R1-Distill-Qwen-7B", maxModelLength: 32_768, kvBlocks: 26_000,
        maxRunningSequences: 256, stepTokenBudget: 8192,
        stepBase: 0.0225, prefillPerToken: 0.000_25, decodePerSequence: 0.000_08,
        attentionPerKToken: 0.000_083, outputMedianTokens: 900, outputSigma: 0.8)

    /// QwQ-32B (Qwen2.5 32B: 64 layers, 8 KV heads × 128, bf16) on two H100 80 GB, TP=2.
    public static let qwen32bH100x2 = EngineProfile(
        name: "32b-h100x2", summary: "QwQ-32B, bf16, two H100 80 GB, tensor parallel 2",
        servedModelName: "QwQ-32B", maxModelLength: 32_768, kvBlocks: 17_000,
        maxRunningSequences: 256, stepTokenBudget: 8192,
        stepBase: 0.0155, prefillPerToken: 0.000_074, decodePerSequence: 0.000_1,
        attentionPerKToken: 0.000_055, outputMedianTokens: 1400, outputSigma: 0.7)

    /// QwQ-32B on two L20 48 GB, TP=2: little room left for KV, so queueing sets in early.
    public static let qwen32bL20x2 = EngineProfile(
        name: "32b-l20x2", summary: "QwQ-32B, bf16, two L20 48 GB, tensor parallel 2",
        servedModelName: "QwQ-32B", maxModelLength: 32_768, kvBlocks: 4_100,
        maxRunningSequences: 256, stepTokenBudget: 8192,
        stepBase: 0.049, prefillPerToken: 0.000_6, decodePerSequence: 0.000_12,
        attentionPerKToken: 0.000_19, outputMedianTokens: 1400, outputSigma: 0.7)
}
