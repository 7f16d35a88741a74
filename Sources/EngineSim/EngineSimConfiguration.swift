import EngineModel

/// Everything `junction engine-sim` is started with.
public struct EngineSimConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port; the chosen one is printed on stdout.
    public var port = 8000
    public var dialect: Dialect = .vllm
    public var profile: EngineProfile = .tiny
    /// The names the model answers to (vLLM's `--served-model-name` takes several); the first
    /// also labels the metrics. Empty: the profile's name.
    public var servedModelNames: [String] = []
    /// A file to write one JSON line to per request at its first token (`RequestLog`); nil: none.
    public var requestLogPath: String?
    /// vLLM's `--enable-lora`: LoRA adapters are served (`loraModules` at start, more loaded at
    /// run time), at most `maxLoras` in one batch, each loaded into a slot in `loraLoadSeconds`.
    public var enableLoRA = false
    public var loraModules: [String] = []
    public var maxLoras = 1
    public var loraLoadSeconds = 0.02
    /// vLLM's `--scheduling-policy`: `priority` orders the queue by the requests' `priority`.
    public var schedulingPolicy: EngineCore.SchedulingPolicy = .fcfs
    /// Runs the model this many times faster than real time.
    public var speed = 1.0
    /// Fixes answers of requests that carry no `seed`.
    public var seed: UInt64 = 0
    /// `/health` answers 503 (and inference too) for this long after start.
    public var startupSeconds = 0.0
    public var faults = Faults()
    public var vllmMetrics: MetricsRenderer.VLLMGeneration = .current
    public var maxBodyBytes = 16 << 20
    /// After SIGTERM, how long open requests may run before they are cancelled.
    public var shutdownGraceSeconds = 5.0
    /// The instance's part in prefill/decode disaggregation (Docs/engine-sim.md).
    public var role: SimRole = .both
    /// Model time of one KV hand-off from a prefill instance: a fixed cost (connection set-up,
    /// metadata) plus a cost per 16-token block. The defaults are the 7B profiles' block
    /// (Qwen2-7B, bf16: 28 layers × 4 KV heads × 128 × 2 (K and V) × 2 bytes × 16 tokens =
    /// 896 KiB) over a 100 Gb/s RDMA link (about 10 GB/s effective); the `--speed` factor
    /// divides them like every model time.
    public var kvTransferBaseSeconds = 0.001
    public var kvTransferSecondsPerBlock = 0.0001
    /// How long a prefill instance keeps a computed prompt's KV for its decode instance to
    /// fetch, and how long a decode instance waits for an SGLang prefill to finish.
    public var handoffTimeoutSeconds = 30.0

    public init() {}

    public var modelName: String { servedModelNames.first ?? profile.servedModelName }
    public var modelNames: [String] { servedModelNames.isEmpty ? [profile.servedModelName] : servedModelNames }
}

extension MetricsRenderer.VLLMGeneration: Codable {}

/// What part of prefill/decode disaggregated serving the simulated instance plays.
public enum SimRole: String, Sendable, CaseIterable {
    /// An ordinary engine.
    case both
    /// Computes prompts and keeps their KV for a decode instance to fetch.
    case prefill
    /// Generates, fetching a prompt's KV from the prefill instance named in the request.
    case decode
}
