import Raft

/// An operator changing membership during the fault phase: one node at a time is removed, added
/// back as a learner (with the disk it had: a stale log the leader overwrites) and promoted, at
/// whichever node leads. A step the leader refuses (a change still pending, a learner not caught
/// up, no leader) is simply tried again at the next step's time, as an operator's tool would.
extension Simulation {
    func stepMembership() {
        let leaders = nodes.indices.filter { nodes[$0].core?.role == .leader }
        guard let i = leaders.max(by: { nodes[$0].core!.term < nodes[$1].core!.term }) else { return }
        let membership = nodes[i].core!.membership
        for j in nodes.indices where nodes[j].awaitingReplacement
        && membership.incarnations[nodes[j].id] == nodes[j].config.incarnation {
            nodes[j].awaitingReplacement = false // taken back as its new incarnation
        }
        let change: MembershipChange
        if let wiped = nodes.first(where: { node in
            membership.incarnations[node.id].map { $0 != node.config.incarnation } ?? false
        }) {
            // Replacing a wiped node: remove it, and the steps below add it back as a learner,
            // which the leader claims as its new incarnation, and promote it once caught up.
            change = .remove(wiped.id)
        } else if let learner = membership.learners.min() {
            change = .promote(learner)
        } else if let outside = nodes.map(\.id).first(where: { !membership.members.contains($0) }) {
            change = .addLearner(outside)
        } else if nodes.contains(where: \.awaitingReplacement) {
            // A wiped node not yet claimed as its new incarnation cannot vote: removing another
            // voter now could leave no quorum. Wait for the leader to claim it.
            return
        } else {
            let voters = membership.voters.sorted()
            change = .remove(voters[random(0...voters.count - 1)])
        }
        do {
            try nodes[i].core!.proposeMembershipChange(change)
            membershipChanges += 1
            if keepTrace { trace.append("\(now)ms node \(i + 1) proposes \(change)") }
        } catch {
            if keepTrace { trace.append("\(now)ms node \(i + 1) refuses \(change): \(error)") }
        }
        drive(i)
    }
}
