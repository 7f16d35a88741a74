import Raft
import Routing
import SchedulerCore

/// Everything the scheduler's metrics page shows that is a state rather than an event, read in
/// one go on the node's executor: Raft's view, the replicated registry, and (on the leader
/// only) what the agents last reported of each engine. Rendered by `SchedulerMetricsPage`.
public struct SchedulerObservation: Sendable {
    public struct EngineView: Sendable, Equatable {
        public var load: EngineLoad
        public var healthy: Bool
        /// Seconds since the agent's last report reached this leader.
        public var reportAgeSeconds: Double
        public var prefixCacheHitRate: Double
        /// Requests this leader assigned to the engine and has not seen finish.
        public var inFlight: Int
        /// The leader's `PrefillEstimate`: prompt tokens still to compute there, and how many a second.
        public var prefillBacklogTokens = 0.0
        public var prefillTokensPerSecond = 0.0

        public init(load: EngineLoad, healthy: Bool, reportAgeSeconds: Double, prefixCacheHitRate: Double, inFlight: Int) {
            self.load = load
            self.healthy = healthy
            self.reportAgeSeconds = reportAgeSeconds
            self.prefixCacheHitRate = prefixCacheHitRate
            self.inFlight = inFlight
        }
    }

    public var clusterName: String
    public var status: SchedulerReplica.Status
    public var activity: SchedulerReplica.Activity
    /// Whether the connection to each other member is up now.
    public var peersConnected: [NodeID: Bool]
    public var policy: String
    public var instances: [InstanceRecord]
    /// Affinity entries held per instance (replicated).
    public var affinityEntries: [String: Int]
    /// The leader's view of each engine by instance id; empty on followers.
    public var engines: [String: EngineView]

    public init(
        clusterName: String, status: SchedulerReplica.Status, activity: SchedulerReplica.Activity, peersConnected: [NodeID: Bool],
        policy: String, instances: [InstanceRecord], affinityEntries: [String: Int], engines: [String: EngineView]
    ) {
        self.clusterName = clusterName
        self.status = status
        self.activity = activity
        self.peersConnected = peersConnected
        self.policy = policy
        self.instances = instances
        self.affinityEntries = affinityEntries
        self.engines = engines
    }
}
