import EngineModel
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `junction engine-sim`: an HTTP server that answers like vLLM, SGLang or BladeLLM, backed by
/// the `EngineModel` core. Runs until SIGTERM or SIGINT, then finishes what is in flight.
public enum EngineSimServer {
    public static func run(_ config: EngineSimConfiguration, logger: Logger) async throws {
        let core = try EngineCore(profile: config.profile, lora: .init(maxLoras: config.maxLoras, loadSeconds: config.loraLoadSeconds), policy: config.schedulingPolicy)
        let faults = FaultSwitch(config.faults)
        let requestLog = try config.requestLogPath.map { try RequestLog(path: $0) }
        let runner = EngineRunner(core: core, speed: config.speed, faults: faults, requestLog: requestLog)
        let state = ServerState(config: config, runner: runner, faults: faults, logger: logger)
        let router = Router()
        EngineRoutes(state: state).add(to: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            services: [EngineLoopService(runner: runner, state: state)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? config.port
                state.boundPortValue.store(port, ordering: .releasing)
                let line = "engine-sim listening on http://\(config.host):\(port) dialect=\(config.dialect.rawValue) "
                    + "profile=\(config.profile.name) model=\(config.modelName) speed=\(config.speed) role=\(config.role.rawValue)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            },
            logger: logger)
        // SIGTERM lets open streams finish, but not forever: a hung engine would never be done.
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(config.shutdownGraceSeconds)
        group.maximumCancellationDuration = .seconds(2)
        do { try await ServiceGroup(configuration: group).run() } catch {
            try? await state.kvFetch.client.shutdown()
            throw error
        }
        try await state.kvFetch.client.shutdown()
    }
}

/// What every handler shares.
final class ServerState: Sendable {
    let config: EngineSimConfiguration
    let runner: EngineRunner
    let faults: FaultSwitch
    let logger: Logger
    let startTime = Date().timeIntervalSince1970
    /// Names this engine in the KV hand-off parameters it gives (vLLM's `remote_engine_id`).
    let engineID = UUID().uuidString.lowercased()
    let ledger: HandoffLedger
    let kvFetch = KVFetch(client: KVFetch.makeClient())
    let handoff = HandoffStats()
    let boundPortValue: Atomic<Int>
    /// The LoRA adapters served now: `--lora-modules`, then loaded and unloaded at run time.
    let adapters: Mutex<[String]>
    private let ready = Atomic<Bool>(false)
    private let requestCounter = Atomic<UInt64>(0)

    init(config: EngineSimConfiguration, runner: EngineRunner, faults: FaultSwitch, logger: Logger) {
        self.config = config
        self.runner = runner
        self.faults = faults
        self.logger = logger
        ledger = HandoffLedger(keepFor: .seconds(config.handoffTimeoutSeconds))
        boundPortValue = Atomic(config.port)
        adapters = Mutex(config.loraModules)
    }

    /// The port the server listens on (the configured one may be 0: any free port).
    var boundPort: Int { boundPortValue.load(ordering: .acquiring) }

    var isReady: Bool { ready.load(ordering: .acquiring) }
    func markReady() { ready.store(true, ordering: .releasing) }
    func nextRequestNumber() -> UInt64 { requestCounter.wrappingAdd(1, ordering: .relaxed).newValue }
}

/// The step loop as a service: started before the HTTP server and stopped after it, so streams
/// still open at SIGTERM get their last tokens.
struct EngineLoopService: Service {
    let runner: EngineRunner
    let state: ServerState

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                if state.config.startupSeconds > 0 {
                    try await Task.sleep(for: .seconds(state.config.startupSeconds))
                }
                state.markReady()
            }
            group.addTask {
                await withTaskCancellationHandler {
                    await runner.run()
                } onCancel: {
                    Task { await runner.stopWaiting() }
                }
            }
            try await gracefulShutdown()
            group.cancelAll()
        }
    }
}
