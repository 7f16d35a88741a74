import EngineModel

/// Everything `junction engine-sim` is started with.
public struct EngineSimConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port; the chosen one is printed on stdout.
    public var port = 8000
    public var dialect: Dialect = .vllm
    public var profile: EngineProfile = .tiny
    public var servedModelName: String?
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

    public init() {}

    public var modelName: String { servedModelName ?? profile.servedModelName }
}

extension MetricsRenderer.VLLMGeneration: Codable {}
