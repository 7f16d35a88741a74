import Raft

/// The properties checked after every event (Raft paper, figure 3), and at the end of a run.
extension Simulation {
    /// After healing, a leader must be established within this bound...
    var leaderBoundMillis: Int { 2_000 }
    /// ...and, this long after it is, every operation must complete within `operationBoundMillis`.
    var settleMillis: Int { 300 }
    var operationBoundMillis: Int { 1_000 }
    /// ...and every member must hold what was committed this long before the end.
    var catchUpMillis: Int { 1_000 }

    func checkSafety() {
        for i in nodes.indices where nodes[i].isUp {
            let core = nodes[i].core!
            if let violation = core.safetyViolation { return fail(violation) }
            // Terms and commit indexes never go back within a node's life.
            if core.term < nodes[i].lastSeenTerm {
                return fail("node \(i + 1): term went back from \(nodes[i].lastSeenTerm) to \(core.term)")
            }
            if core.commitIndex < nodes[i].lastSeenCommit {
                return fail("node \(i + 1): commit index went back from \(nodes[i].lastSeenCommit) to \(core.commitIndex)")
            }
            if keepTrace, core.term != nodes[i].lastSeenTerm { trace.append("\(now)ms node \(i + 1) term \(core.term) \(core.role)") }
            nodes[i].lastSeenTerm = core.term
            nodes[i].lastSeenCommit = core.commitIndex
            // Election safety: at most one leader per term.
            if core.role == .leader {
                if let other = leaders[core.term], other != core.id {
                    return fail("election safety: nodes \(other) and \(core.id) both led term \(core.term)")
                }
                if leaders[core.term] == nil, keepTrace { trace.append("\(now)ms node \(i + 1) leads term \(core.term)") }
                leaders[core.term] = core.id
            }
            observeCommits(i)
            if failure != nil { return }
            // Leader completeness: a leader holds every entry committed in an earlier term. (A
            // deposed leader that has not heard of its successor may lack later entries.)
            if core.role == .leader, let last = lastCommitted(before: core.term) {
                if last > core.lastIndex {
                    return fail("leader completeness: leader \(core.id) of term \(core.term) ends at \(core.lastIndex), but \(last) was committed in term \(ledgerCommitTerm[Int(last)])")
                }
                if last > (core.snapshotMetadata?.index ?? 0), core.term(at: last) != ledger[Int(last)].term {
                    return fail("leader completeness: leader \(core.id) of term \(core.term) has term \(core.term(at: last) ?? 0) at index \(last), where term \(ledger[Int(last)].term) was committed in term \(ledgerCommitTerm[Int(last)])")
                }
            }
        }
        checkLogMatching()
        for node in nodes {
            guard let core = node.core, core.role == .leader, leaderEstablishedAt[core.term] == nil,
                  core.term(at: core.commitIndex) == core.term else { continue }
            leaderEstablishedAt[core.term] = now
        }
    }

    /// Extends the ledger of committed entries from what a node reports committed, and checks
    /// that it agrees with what the ledger already holds (state-machine safety, no entry lost).
    func observeCommits(_ i: Int) {
        guard let core = nodes[i].core else { return }
        let commit = core.commitIndex
        var index = max(nodes[i].checkedThrough + 1, core.firstIndex)
        while index <= commit {
            guard let entry = core.entry(at: index) else { break }
            if index < LogIndex(ledger.count) {
                if ledger[Int(index)] != entry {
                    return fail("committed entry lost: node \(i + 1) holds \(describe(entry)) at committed index \(index), but \(describe(ledger[Int(index)])) was committed there")
                }
            } else if index == LogIndex(ledger.count) {
                ledger.append(entry)
                ledgerCommitTerm.append(core.term)
                ledgerHash.append(KVStateMachine.chain(ledgerHash.last!, entry))
                checkDurableOnQuorum(entry, membership: core.membership)
                if failure != nil { return }
            } else {
                return fail("node \(i + 1) committed \(index) but the ledger only reaches \(ledger.count - 1)")
            }
            index += 1
        }
        nodes[i].checkedThrough = max(nodes[i].checkedThrough, min(commit, index - 1))
    }

    /// The last ledger index committed in a term before `term`.
    func lastCommitted(before term: Term) -> LogIndex? {
        var index = ledger.count - 1
        while index > 0, ledgerCommitTerm[index] >= term { index -= 1 }
        return index > 0 ? LogIndex(index) : nil
    }

    /// A committed entry must already be durable on a quorum of the voters that committed it (the
    /// membership of the node that first reports it: the leader, as it counted), or a crash could
    /// lose it. A disk wiped after it acknowledged the entry still counts: that loss is the fault
    /// injected, which the identity guard must survive, not a write acknowledged too early.
    func checkDurableOnQuorum(_ entry: Entry, membership: Membership) {
        func holds(_ disk: MemoryStorage?) -> Bool {
            guard let state = disk?.state else { return false }
            if let snap = state.snapshot, snap.metadata.index >= entry.index { return true }
            return state.entries.first(where: { $0.index == entry.index }) == entry
        }
        var holders = 0
        for node in nodes where membership.voters.contains(node.id) && (holds(node.disk) || holds(node.wipedDisk)) {
            holders += 1
        }
        if holders < membership.quorum {
            fail("entry \(entry.index) (term \(entry.term)) was committed while durable on only \(holders) of the \(membership.voters.count) voters' disks")
        }
    }

    /// State-machine safety: every replica that applied index i has the same state there.
    func checkApplied(_ i: Int) {
        let sm = nodes[i].stateMachine
        guard sm.applied < LogIndex(ledgerHash.count) else {
            return fail("node \(i + 1) applied \(sm.applied), beyond the committed ledger (\(ledger.count - 1))")
        }
        if ledgerHash[Int(sm.applied)] != sm.hash {
            fail("state machine safety: node \(i + 1) state at applied index \(sm.applied) differs from the committed history")
        }
    }

    /// Log matching: if two logs hold an entry with the same index and term, the logs are
    /// identical up to it.
    func checkLogMatching() {
        let up = nodes.indices.filter { nodes[$0].isUp }
        for (n, a) in up.enumerated() {
            for b in up[(n + 1)...] {
                let x = nodes[a].core!, y = nodes[b].core!
                let low = max(x.firstIndex, y.firstIndex)
                var index = min(x.lastIndex, y.lastIndex)
                var matched = false
                while index >= low {
                    let ex = x.entry(at: index)!, ey = y.entry(at: index)!
                    if matched || ex.term == ey.term {
                        if ex != ey {
                            return fail("log matching: nodes \(x.id) and \(y.id) share term \(ex.term) at or after \(index) but differ at \(index): \(describe(ex)) vs \(describe(ey))")
                        }
                        matched = true
                    }
                    index -= 1
                }
            }
        }
    }

    /// After healing, the group must settle on a leader (one that has committed an entry of its
    /// term and still leads at the end) within `leaderBoundMillis`; from shortly after that on,
    /// every client operation must complete within `operationBoundMillis`; and every member must
    /// hold the leader's membership and what was committed `catchUpMillis` before the end.
    func checkLiveness() {
        let finalLeader = nodes.compactMap(\.core).filter { $0.role == .leader }.max { $0.term < $1.term }
        guard let leader = finalLeader, let established = leaderEstablishedAt[leader.term] else {
            return fail("liveness: no leader at the end, \(params.endAt - params.healAt)ms after healing")
        }
        let stable = max(established, params.healAt)
        if stable > params.healAt + leaderBoundMillis {
            return fail("liveness: the group settled on leader \(leader.id) (term \(leader.term)) only \(stable - params.healAt)ms after healing (bound \(leaderBoundMillis)ms)")
        }
        for node in nodes where leader.membership.members.contains(node.id) {
            // A member that stopped following (say, one that drops a leader it does not know
            // as a member) leaves a quorum that tolerates one failure less, silently.
            guard let core = node.core else { continue }
            if core.membership != leader.membership || core.commitIndex < catchUpMark {
                return fail("liveness: member \(node.id) did not catch up: commit \(core.commitIndex) (applied \(core.appliedIndex), snapshot \(core.snapshotMetadata?.index ?? 0)) of \(catchUpMark) committed \(catchUpMillis)ms before the end, membership \(core.membership) against the leader's \(leader.membership)")
            }
        }
        var completed = 0
        for op in healedOps where op.call >= stable + settleMillis {
            if !op.ok {
                return fail("liveness: client \(op.client)'s operation at \(op.call)ms failed after the group settled at \(stable)ms")
            }
            if op.returned - op.call > operationBoundMillis {
                return fail("liveness: client \(op.client)'s operation at \(op.call)ms took \(op.returned - op.call)ms")
            }
            completed += 1
        }
        for client in clients {
            if let (_, call) = client.current, call >= stable + settleMillis, now - call > operationBoundMillis {
                return fail("liveness: client \(client.id)'s operation at \(call)ms never completed")
            }
        }
        if completed < clients.count && params.endAt - stable > 1_500 {
            fail("liveness: only \(completed) operations completed after the group settled at \(stable)ms")
        }
    }

    func checkLinearizability() {
        // Writes still in flight when the run stops may or may not have happened.
        for client in clients {
            if let (request, call) = client.current, case .put(let v) = request.kind {
                history[Int(request.key), default: []].append(
                    RegisterOperation(client: client.id, kind: .put(v), call: call, returned: nil))
            }
        }
        for (key, operations) in history.sorted(by: { $0.key < $1.key }) {
            switch LinearizabilityChecker.check(operations) {
            case .linearizable:
                continue
            case .notLinearizable:
                let culprit = shortestFailingPrefix(operations)
                trace.append("linearizability: shortest failing prefix of key \(key), by call time (last 12):")
                for op in culprit.suffix(12) {
                    trace.append("  client \(op.client) \(op.kind) called \(op.call)ms returned \(op.returned.map { "\($0)ms" } ?? "never")")
                }
                return fail("linearizability: the history of key \(key) (\(operations.count) operations) has no valid order; it fails from the operation called at \(culprit.last?.call ?? 0)ms")
            case .gaveUp:
                return fail("linearizability: the search on key \(key) (\(operations.count) operations, \(operations.filter { $0.returned == nil }.count) of unknown outcome) gave up")
            }
        }
    }

    /// The operations called up to the first point where the history stops being linearizable.
    func shortestFailingPrefix(_ operations: [RegisterOperation]) -> [RegisterOperation] {
        let byCall = operations.sorted { $0.call < $1.call }
        var low = 1, high = byCall.count
        while low < high {
            let mid = (low + high) / 2
            // A read may return a write called after it (they overlap), so keep those writes.
            var prefix = Array(byCall.prefix(mid))
            var read = Set<UInt64>()
            for op in prefix { if case .get(let v) = op.kind { read.insert(v) } }
            for op in byCall.dropFirst(mid) { if case .put(let v) = op.kind, read.contains(v) { prefix.append(op) } }
            if LinearizabilityChecker.check(prefix) == .notLinearizable {
                high = mid
            } else {
                low = mid + 1
            }
        }
        return Array(byCall.prefix(low))
    }

    func describe(_ entry: Entry) -> String {
        "[\(entry.index) t\(entry.term) \(entry.kind)\(entry.data.isEmpty ? "" : " \(entry.data.count)B")]"
    }
}
