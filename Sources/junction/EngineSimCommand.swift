import ArgumentParser
import EngineModel
import EngineSim
import Logging

struct EngineSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-sim",
        abstract: "A simulated inference engine that answers like vLLM, SGLang or BladeLLM.",
        subcommands: [EngineSimServe.self, EngineSimCalibrate.self],
        defaultSubcommand: EngineSimServe.self
    )
}

extension Dialect: ExpressibleByArgument {}
extension MetricsRenderer.VLLMGeneration: ExpressibleByArgument {}
extension EngineCore.SchedulingPolicy: ExpressibleByArgument {}

struct EngineSimServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the OpenAI API, /health and /metrics in an engine's dialect (the default).",
        discussion: "Profiles: \(EngineProfile.all.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")). "
            + "Faults can also be changed at run time: POST /admin/faults with a JSON object, DELETE /admin/faults."
    )

    @Option(help: "Which engine to impersonate: vllm, sglang or bladellm.") var dialect: Dialect = .vllm
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one; the chosen port is printed).") var port = 8000
    @Option(help: "Performance profile.") var profile = "tiny"
    @Option(parsing: .upToNextOption, help: "Names to serve the model as, the first also in /metrics (default: the profile's).")
    var servedModelName: [String] = []
    @Flag(help: "vLLM: serve LoRA adapters (--lora-modules; more loaded at run time with POST /v1/load_lora_adapter).")
    var enableLora = false
    @Option(parsing: .upToNextOption, help: "vLLM: LoRA adapters to serve, as NAME or NAME=PATH (the path is not read).")
    var loraModules: [String] = []
    @Option(help: "vLLM: LoRA adapters one batch may use, and adapter slots kept loaded.") var maxLoras = 1
    @Option(help: "vLLM: model milliseconds to load a LoRA adapter into a slot.") var loraLoadMs = 20.0
    @Option(help: "vLLM: fcfs, or priority (requests' `priority` field orders the queue, lower first, and picks who is preempted).")
    var schedulingPolicy: EngineCore.SchedulingPolicy = .fcfs
    @Option(help: "Run the model this many times faster than real time.") var speed = 1.0
    @Option(help: "Seed for answers of requests that bring none.") var seed: UInt64 = 0
    @Option(help: "Override the profile's number of KV blocks.") var kvBlocks: Int?
    @Option(help: "Override the profile's maximum running sequences.") var maxNumSeqs: Int?
    @Option(help: "Seconds to answer 503 on /health after start.") var startupSeconds = 0.0
    @Option(help: "vLLM metric names: current (V1, 0.8+) or legacy (V0, 0.7.x).") var vllmMetrics: MetricsRenderer.VLLMGeneration = .current
    @Option(help: "Largest request body in bytes.") var maxBodyBytes = 16 << 20
    @Option(help: "After SIGTERM, seconds open requests may run before they are cancelled.") var shutdownGraceSeconds = 5.0
    @Option(help: "Part in prefill/decode disaggregation: both, prefill or decode.") var role: SimRole = .both
    @Option(help: "KV hand-off: fixed model milliseconds per transfer.") var kvTransferBaseMs = 1.0
    @Option(help: "KV hand-off: model milliseconds per 16-token block transferred.") var kvTransferMsPerBlock = 0.1
    @Option(help: "KV hand-off: seconds a prefill keeps a prompt's KV for its decode, and a decode waits for an SGLang prefill.")
    var handoffTimeoutSeconds = 30.0
    @Option(help: "Write one JSON line per request at its first token to this file (arrival, prompt and cached tokens, queue time, TTFT, the step it shared).")
    var requestLog: String?
    @Option(help: "Fault: fraction of requests that fail.") var errorRate = 0.0
    @Option(help: "Fault: HTTP status of failed requests (500 or 503).") var errorStatus = 500
    @Flag(help: "Fault: accept requests and never answer.") var hang = false
    @Option(help: "Fault: multiply step times by this factor.") var slowness = 1.0
    @Option(help: "Fault: cut each stream's connection after this many tokens.") var cutStreamAfterTokens: Int?
    @Option(help: "Fault: exit once any stream has sent this many tokens.") var crashAfterTokens: Int?
    @Flag(help: "Fault: /health answers 503 while inference goes on.") var healthFailing = false
    @Option(help: "Fault: hold each stream's response open this many milliseconds after its [DONE].") var doneLingerMs: Int?

    func run() async throws {
        var config = EngineSimConfiguration()
        config.host = host
        config.port = port
        config.dialect = dialect
        do {
            config.profile = try EngineProfile.named(profile)
            if let kvBlocks { config.profile.kvBlocks = kvBlocks }
            if let maxNumSeqs { config.profile.maxRunningSequences = maxNumSeqs }
            if kvBlocks != nil {
                config.profile.maxModelLength = min(config.profile.maxModelLength, config.profile.kvBlocks * config.profile.blockSize)
                config.profile.stepTokenBudget = min(config.profile.stepTokenBudget, config.profile.kvBlocks * config.profile.blockSize - 1)
            }
            try config.profile.validate()
        } catch {
            throw ValidationError("\(error)")
        }
        guard speed > 0, speed <= 10_000 else { throw ValidationError("--speed must be above 0 and at most 10000") }
        guard !servedModelName.contains(where: \.isEmpty) else { throw ValidationError("--served-model-name names must not be empty") }
        config.servedModelNames = servedModelName
        let adapters = loraModules.map { String($0.split(separator: "=", maxSplits: 1).first ?? "") }
        guard !adapters.contains(where: \.isEmpty) else { throw ValidationError("--lora-modules takes NAME or NAME=PATH") }
        guard enableLora || adapters.isEmpty else { throw ValidationError("--lora-modules needs --enable-lora") }
        guard enableLora == false || dialect == .vllm else { throw ValidationError("--enable-lora is for the vllm dialect") }
        guard (1...1_024).contains(maxLoras) else { throw ValidationError("--max-loras must be from 1 to 1024") }
        guard loraLoadMs >= 0 else { throw ValidationError("--lora-load-ms must not be negative") }
        config.enableLoRA = enableLora
        config.loraModules = adapters
        config.maxLoras = maxLoras
        config.loraLoadSeconds = loraLoadMs / 1000
        guard schedulingPolicy == .fcfs || dialect == .vllm else { throw ValidationError("--scheduling-policy is for the vllm dialect") }
        config.schedulingPolicy = schedulingPolicy
        config.speed = speed
        config.requestLogPath = requestLog
        config.seed = seed
        config.startupSeconds = startupSeconds
        config.vllmMetrics = vllmMetrics
        config.maxBodyBytes = maxBodyBytes
        guard shutdownGraceSeconds >= 0 else { throw ValidationError("--shutdown-grace-seconds must not be negative") }
        config.shutdownGraceSeconds = shutdownGraceSeconds
        guard kvTransferBaseMs >= 0, kvTransferMsPerBlock >= 0 else { throw ValidationError("--kv-transfer-* must not be negative") }
        guard handoffTimeoutSeconds > 0, handoffTimeoutSeconds <= 3_600 else {
            throw ValidationError("--handoff-timeout-seconds must be above 0 and at most 3600")
        }
        config.role = role
        config.kvTransferBaseSeconds = kvTransferBaseMs / 1000
        config.kvTransferSecondsPerBlock = kvTransferMsPerBlock / 1000
        config.handoffTimeoutSeconds = handoffTimeoutSeconds
        var faults = Faults()
        faults.errorRate = errorRate
        faults.errorStatus = errorStatus
        faults.hang = hang
        faults.slowness = slowness
        faults.cutStreamAfterTokens = cutStreamAfterTokens
        faults.crashAfterTokens = crashAfterTokens
        faults.healthFailing = healthFailing
        faults.doneLingerMs = doneLingerMs
        guard (doneLingerMs ?? 0) >= 0 else { throw ValidationError("--done-linger-ms must not be negative") }
        guard (0...1).contains(errorRate) else { throw ValidationError("--error-rate must be from 0 to 1") }
        guard errorStatus == 500 || errorStatus == 503 else { throw ValidationError("--error-status must be 500 or 503") }
        guard slowness >= 1 else { throw ValidationError("--slowness must be at least 1") }
        config.faults = faults
        var logger = Logger(label: "engine-sim")
        logger.logLevel = .warning
        try await EngineSimServer.run(config, logger: logger)
    }
}

extension SimRole: ExpressibleByArgument {}
