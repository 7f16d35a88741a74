import Foundation
import Wire

/// `junction ctl status` output: a table for people, JSON for scripts.
enum StatusFormatting {
    static func text(_ s: StatusReply) -> String {
        var lines = [
            "node \(s.nodeID): \(s.raftState), term \(s.term), leader \(s.leaderID == 0 ? "unknown" : String(s.leaderID))",
            "commit \(s.commitIndex), applied \(s.appliedIndex), registry version \(s.registryVersion), policy \(s.policy?.name ?? "?")",
            "cluster \(s.clusterName), this node's incarnation \(hex(s.incarnation))",
            "members:",
        ]
        for m in s.members {
            lines.append("  \(m.id) \(m.learner ? "learner" : "voter") \(m.address) \(m.reachable ? "reachable" : "UNREACHABLE") match \(m.matchIndex) \(identity(m))")
        }
        lines.append("instances:")
        for i in s.instances {
            guard let instance = i.instance else { continue }
            var line = "  \(instance.id) \(instance.state) \(instance.model) \(instance.engine) \(instance.role) \(instance.endpointURL) affinity \(i.affinityEntries)"
            if !instance.aliases.isEmpty { line += " aliases \(instance.aliases.joined(separator: ","))" }
            if !instance.adapters.isEmpty { line += " adapters \(instance.adapters.joined(separator: ","))" }
            if let report = i.lastReport {
                line += " running \(report.running) waiting \(report.waiting) kv \(String(format: "%.2f", report.kvUsage)) in-flight \(i.inFlight) report \(i.reportAgeMs) ms ago"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// A member's identity as the answering node sees it; a mismatch means the disk under that
    /// id is not the one the group claimed (wiped or swapped): it cannot vote until replaced.
    static func identity(_ m: MemberStatus) -> String {
        guard m.claimedIncarnation != 0 else { return "unclaimed" }
        if m.heardIncarnation != 0, m.heardIncarnation != m.claimedIncarnation {
            return "claimed \(hex(m.claimedIncarnation)) but answers as \(hex(m.heardIncarnation)): NOT VOTING (wiped disk? replace it: junction ctl replace-member)"
        }
        return "incarnation \(hex(m.claimedIncarnation))"
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    static func json(_ s: StatusReply) -> String {
        let object: [String: Any] = [
            "node_id": s.nodeID, "leader_id": s.leaderID, "term": s.term, "commit_index": s.commitIndex,
            "applied_index": s.appliedIndex, "raft_state": s.raftState, "registry_version": s.registryVersion,
            "cluster_name": s.clusterName, "incarnation": hex(s.incarnation), "fresh": s.fresh,
            "policy": ["name": s.policy?.name ?? "", "params": Dictionary(uniqueKeysWithValues: (s.policy?.params ?? []).map { ($0.key, $0.value) })],
            "members": s.members.map {
                ["id": $0.id, "address": $0.address, "reachable": $0.reachable, "match_index": $0.matchIndex,
                 "learner": $0.learner, "claimed_incarnation": hex($0.claimedIncarnation), "heard_incarnation": hex($0.heardIncarnation)] as [String: Any]
            },
            "instances": s.instances.compactMap { i -> [String: Any]? in
                guard let instance = i.instance else { return nil }
                var entry: [String: Any] = [
                    "id": instance.id, "model": instance.model, "endpoint_url": instance.endpointURL,
                    "engine": "\(instance.engine)", "role": "\(instance.role)",
                    "state": "\(instance.state)", "state_reason": instance.stateReason, "affinity_entries": i.affinityEntries,
                    "in_flight": i.inFlight, "aliases": instance.aliases, "adapters": instance.adapters,
                ]
                if let report = i.lastReport {
                    entry["load"] = [
                        "running": report.running, "waiting": report.waiting, "kv_usage": report.kvUsage, "age_ms": i.reportAgeMs,
                        "loaded_adapters": report.loadedAdapters,
                    ] as [String: Any]
                }
                return entry
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
