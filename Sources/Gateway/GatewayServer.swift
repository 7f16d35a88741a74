import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle

/// `junction gateway`: the HTTP server and the scheduler link, until SIGTERM (open answers may
/// finish for the grace period) or SIGINT.
public enum GatewayServer {
    public static func run(_ config: GatewayConfiguration, logger: Logger) async throws {
        let state = GatewayState(config: config, logger: logger)
        let router = Router()
        GatewayRoutes(state: state).add(to: router)
        let webSocketRouter = Router(context: BasicWebSocketRequestContext.self)
        GatewayWebSocket(state: state).add(to: webSocketRouter)
        let app = Application(
            router: router,
            server: .http1WebSocketUpgrade(webSocketRouter: webSocketRouter),
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: nil),
            services: [SchedulerLinkService(state: state)],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? config.port
                FileHandle.standardOutput.write(Data("gateway listening on http://\(config.host):\(port)\n".utf8))
            },
            logger: logger)
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(30)
        group.maximumCancellationDuration = .seconds(2)
        try await ServiceGroup(configuration: group).run()
        try await state.http.shutdown()
    }
}

/// The scheduler link, and capacity signals releasing waiting requests in order.
struct SchedulerLinkService: Service {
    let state: GatewayState
    func run() async throws {
        let state = self.state
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await state.link.run() }
                group.addTask {
                    for await signal in state.link.capacity { state.queue.signal(slots: Int(signal.freeSlots)) }
                }
            }
        }
    }
}
