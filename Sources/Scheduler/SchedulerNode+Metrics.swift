import MetricsEndpoint
import Raft
import SchedulerCore

/// The scheduler's `/metrics`, `/healthz` and `/readyz`.
extension SchedulerNode {
    /// The state half of the metrics page, read in one go (after the last suspension, so the
    /// replica's state is not copied: see `unownedExecutor`).
    public func observation() async -> SchedulerObservation {
        var connected: [NodeID: Bool] = [:]
        for member in onReplica({ $0.membership.members }) where member != id { connected[member] = await transport.isConnected(member) }
        let (status, activity, state) = onReplica { ($0.status, $0.activity, $0.state) }
        let isLeader = status.role == .leader && ledTerm == status.term
        let now = ContinuousClock.now
        var engines: [String: SchedulerObservation.EngineView] = [:]
        var affinity: [String: Int] = [:]
        for record in state.sortedInstances {
            affinity[record.id] = state.affinity.entryCount(of: record.id)
            guard isLeader, let report = soft.reports[record.id] else { continue }
            var view = SchedulerObservation.EngineView(
                load: report.load, healthy: report.healthy, reportAgeSeconds: (now - report.receivedAt) / .seconds(1),
                prefixCacheHitRate: report.prefixCacheHitRate, inFlight: soft.inFlight[record.id] ?? 0)
            if let estimate = soft.prefill[record.id] {
                view.prefillBacklogTokens = estimate.backlog(at: soft.seconds(now))
                view.prefillTokensPerSecond = estimate.tokensPerSecond
            }
            engines[record.id] = view
        }
        return SchedulerObservation(
            clusterName: config.clusterName, status: status, activity: activity, peersConnected: connected,
            policy: policy(of: state).name.rawValue, instances: state.sortedInstances, affinityEntries: affinity, engines: engines)
    }

    /// Ready when this node can take part: its storage works and it knows a leader (itself or
    /// another). A load balancer or Kubernetes sends nothing to a node that is not.
    public func readiness() -> (ready: Bool, reason: String) {
        let (status, activity) = onReplica { ($0.status, $0.activity) }
        if activity.stopped { return (false, "storage failed") }
        if status.leader == nil { return (false, "no leader known (term \(status.term))") }
        return (true, "")
    }

    /// Serves the metrics endpoint on `host:port` until cancelled; `onListening` gets the port.
    func serveMetrics(host: String, port: Int, onListening: @Sendable (Int) -> Void) async throws {
        let server = try await MetricsServer.bind(
            host: host, port: port,
            responder: MetricsResponder(
                metrics: { [self] in metrics.page(await observation()) },
                readiness: { [self] in await readiness() }))
        onListening(server.port)
        await server.run()
    }
}
