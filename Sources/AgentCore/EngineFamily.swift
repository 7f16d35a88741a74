import PromText

/// The inference engines the agent knows how to read.
public enum EngineFamily: String, Sendable, CaseIterable {
    case vllm, sglang, bladellm

    /// Recognises the engine from its `/metrics`: vLLM and SGLang prefix every metric with their
    /// name; BladeLLM's names are bare but distinctive.
    public static func detect(_ exposition: Exposition) -> EngineFamily? {
        var bladeMarkers = 0
        for family in exposition.families {
            if family.name.hasPrefix("vllm:") { return .vllm }
            if family.name.hasPrefix("sglang:") { return .sglang }
            if MetricNames.bladeMarkers.contains(family.name) { bladeMarkers += 1 }
        }
        return bladeMarkers >= 2 ? .bladellm : nil
    }

    /// From `/v1/models`' `owned_by` (vLLM says "vllm", SGLang "sglang"), when `/metrics` did not tell.
    public static func detect(ownedBy: String) -> EngineFamily? {
        let owner = ownedBy.lowercased()
        if owner.contains("vllm") { return .vllm }
        if owner.contains("sglang") { return .sglang }
        if owner.contains("blade") { return .bladellm }
        return nil
    }

    /// `llm_gateway.infer_backend` or `--engine-kind`: the seed's names and ours.
    public init?(configName: String) {
        switch configName.lowercased() {
        case "vllm": self = .vllm
        case "sglang": self = .sglang
        case "bladellm", "blade", "blade-llm": self = .bladellm
        default: return nil
        }
    }
}
