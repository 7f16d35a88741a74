import PromText
import Raft
import Routing
import SchedulerCore

/// Renders a `SchedulerObservation` as Prometheus families. Pure: the same observation gives
/// the same page, so every series is tested without a process.
///
/// Engines are labelled `instance_id`, never `instance`: Prometheus gives every scraped series
/// an `instance` label of its own (the scrape target) and would rename ours.
public enum SchedulerMetricsPage {
    static let prefix = "junction_scheduler_"

    public static func render(_ o: SchedulerObservation) -> Exposition {
        var page = Page()
        let s = o.status
        page.gauge("info", "This scheduler: its node id and cluster name (always 1).", [
            ([("node_id", String(s.id)), ("cluster", o.clusterName), ("policy", o.policy)], 1)
        ])

        // Raft.
        page.gauge("raft_term", "The Raft term this node is in.", [([], Double(s.term))])
        page.gauge("raft_role", "1 for the role this node has now, 0 for the others.",
            roles.map { role in ([("role", name(of: role))], s.role == role ? 1 : 0) })
        page.gauge("raft_leader_id", "The leader this node follows (its own id when it leads); 0 when it knows none.",
            [([], Double(s.leader ?? 0))])
        page.gauge("raft_commit_index", "Highest log index known committed.", [([], Double(s.commitIndex))])
        page.gauge("raft_applied_index", "Highest log index applied to the state machine.", [([], Double(s.appliedIndex))])
        page.gauge("raft_last_index", "Last index in this node's log.", [([], Double(s.lastIndex))])
        page.gauge("raft_members", "Members of the applied membership, by kind.", [
            ([("kind", "voter")], Double(s.membership.voters.count)),
            ([("kind", "learner")], Double(s.membership.learners.count)),
        ])
        page.gauge("raft_follower_match_lag_entries",
            "Leader only: entries each follower is behind the leader's last index.",
            s.progress.keys.sorted().map { peer in ([("peer", String(peer))], Double(s.lastIndex - min(s.lastIndex, s.progress[peer] ?? 0))) })
        page.gauge("raft_peer_connected", "1 while the connection to the member is up.",
            o.peersConnected.keys.sorted().map { peer in ([("peer", String(peer))], o.peersConnected[peer] == true ? 1 : 0) })
        let a = o.activity
        page.counter("raft_leader_changes", "Leaders this node has found: one per term in which it learned of a leader.",
            Double(a.leadersSeen))
        page.counter("raft_elections_started", "Elections this node started (its term raised to campaign).", Double(a.electionsStarted))
        page.counter("raft_pre_votes_started", "Pre-vote rounds this node started (no term raised).", Double(a.preVotesStarted))
        page.counter("raft_snapshots_taken", "Snapshots this node took to compact its log.", Double(a.snapshotsTaken))
        page.counter("raft_snapshots_installed", "Snapshots this node installed from a leader.", Double(a.snapshotsInstalled))
        page.gauge("raft_snapshot_index", "Last log index covered by the snapshot this node holds (0: none).", [([], Double(a.snapshotIndex))])
        page.gauge("raft_snapshot_bytes", "Size of the snapshot this node holds.", [([], Double(a.snapshotBytes))])
        page.counter("raft_undecodable_membership_entries", "Committed membership entries that did not decode, skipped.",
            Double(a.undecodableMembershipEntries))
        page.gauge("raft_backlog_inputs", "Raft inputs waiting for the disk write under way.", [([], Double(a.backlog))])
        page.gauge("storage_failed", "1 once a storage fault stopped this node (it exits at once).", [([], a.stopped ? 1 : 0)])

        // The registry (replicated: every member shows the same).
        var byStateAndRole: [String: Double] = [:]
        for state in states { for role in instanceRoles { byStateAndRole[key(state, role)] = 0 } }
        for record in o.instances { byStateAndRole[key(record.state, record.role), default: 0] += 1 }
        page.gauge("instances", "Registered engine instances by state and role.",
            states.flatMap { state in
                instanceRoles.map { role in ([("state", name(of: state)), ("role", name(of: role))], byStateAndRole[key(state, role)] ?? 0) }
            })
        page.gauge("instance_info", "Each registered engine instance (always 1), with what it is.",
            o.instances.map { r in
                ([("instance_id", r.id), ("model", r.model), ("engine", r.engine.rawValue), ("role", name(of: r.role)),
                  ("state", name(of: r.state)), ("endpoint", r.endpointURL)], 1)
            })
        page.gauge("instance_up", "1 while the instance's state is up (routable).",
            o.instances.map { r in (engineLabels(r), r.state == .up ? 1 : 0) })
        page.gauge("affinity_entries", "Prefix-affinity entries the replicated table holds per instance.",
            o.instances.map { r in (engineLabels(r), Double(o.affinityEntries[r.id] ?? 0)) })

        // The engines' load as their agents report it: the leader's view only.
        let reported = o.instances.compactMap { r in o.engines[r.id].map { (r, $0) } }
        func perEngine(_ metric: String, _ help: String, _ value: (SchedulerObservation.EngineView) -> Double) {
            page.gauge(metric, help, reported.map { (r, view) in (engineLabels(r), value(view)) })
        }
        perEngine("instance_running", "Leader only: requests the engine is running, as its agent last reported.") { Double($0.load.running) }
        perEngine("instance_waiting", "Leader only: requests queued in the engine.") { Double($0.load.waiting) }
        perEngine("instance_kv_usage_ratio", "Leader only: the engine's KV-cache usage, 0 to 1.") { $0.load.kvUsage }
        perEngine("instance_prompt_tokens_per_second", "Leader only: prompt tokens the engine processed per second.") {
            $0.load.promptTokensPerSecond
        }
        perEngine("instance_generation_tokens_per_second", "Leader only: tokens the engine generated per second.") {
            $0.load.generationTokensPerSecond
        }
        perEngine("instance_prefix_cache_hit_ratio", "Leader only: the engine's own prefix-cache hit rate over the last interval (0 when it does not say).") {
            $0.prefixCacheHitRate
        }
        perEngine("instance_healthy", "Leader only: 1 when the agent's last report called the engine healthy.") { $0.healthy ? 1 : 0 }
        perEngine("instance_report_age_seconds", "Leader only: seconds since the agent's last report arrived.") { $0.reportAgeSeconds }
        perEngine("instance_in_flight", "Leader only: requests this leader assigned to the engine and has not seen finish.") {
            Double($0.inFlight)
        }
        perEngine("instance_prefill_backlog_tokens", "Leader only: prompt tokens the engine has still to compute for requests sent there, as the leader estimates.") {
            $0.prefillBacklogTokens
        }
        perEngine("instance_prefill_tokens_per_second", "Leader only: the engine's prefill rate (computed prompt tokens a second) as the leader has learned it.") {
            $0.prefillTokensPerSecond
        }
        return Exposition(families: page.families)
    }

    static let roles: [Role] = [.follower, .preCandidate, .candidate, .leader]
    static let states: [RoutingInstance.State] = [.up, .draining, .down]
    static let instanceRoles: [RoutingInstance.Role] = [.both, .prefill, .decode]

    static func name(of role: Role) -> String {
        switch role {
        case .follower: "follower"
        case .preCandidate: "pre_candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }

    static func name(of state: RoutingInstance.State) -> String {
        switch state {
        case .up: "up"
        case .draining: "draining"
        case .down: "down"
        }
    }

    static func name(of role: RoutingInstance.Role) -> String {
        switch role {
        case .both: "both"
        case .prefill: "prefill"
        case .decode: "decode"
        }
    }

    private static func key(_ state: RoutingInstance.State, _ role: RoutingInstance.Role) -> String { name(of: state) + "/" + name(of: role) }

    static func engineLabels(_ r: InstanceRecord) -> [(String, String)] { [("instance_id", r.id), ("model", r.model)] }

    /// Families in the order they are added, each named with the scheduler's prefix.
    struct Page {
        var families: [MetricFamily] = []

        mutating func gauge(_ metric: String, _ help: String, _ series: [([(String, String)], Double)]) {
            let name = SchedulerMetricsPage.prefix + metric
            families.append(MetricFamily(name: name, kind: .gauge, help: help, samples: series.map { labels, value in
                Sample(name: name, labels: labels.map { Label($0.0, $0.1) }, value: value)
            }))
        }

        /// Named with `_total` in the family too, as the classic text format (0.0.4) wants.
        mutating func counter(_ metric: String, _ help: String, _ value: Double) {
            let name = SchedulerMetricsPage.prefix + metric + "_total"
            families.append(MetricFamily(name: name, kind: .counter, help: help, samples: [Sample(name: name, value: value)]))
        }
    }
}
