import Raft
import Seeded

/// The outcome of one seeded run.
public struct SimResult: Sendable {
    public var seed: UInt64
    public var parameters: SimParameters
    /// The first violation found, or nil if every check passed.
    public var failure: String?
    public var failedAt: Int?
    public var events: Int
    public var committed: LogIndex
    public var elections: Int
    public var operations: Int
    public var crashes: Int
    public var snapshotsInstalled: Int
    /// Membership changes a leader accepted (each then committed or was overwritten), and those
    /// that committed.
    public var membershipChanges: Int
    public var membershipChangesCommitted: Int
    public var wipes: Int
    /// The last events before the failure, oldest first (with `trace` on).
    public var trace: [String]
}

/// A deterministic, single-threaded simulation of a Raft group under faults, with clients
/// writing and reading a small key-value store. Every step is checked for Raft's safety
/// properties; the client history is checked for linearizability; after the faults heal the
/// group must make progress again.
public final class Simulation {
    enum Event {
        case tick(node: Int, incarnation: Int)
        case deliver(Message)
        case diskSynced(node: Int, generation: Int)
        case clientRequest(ClientRequest, node: Int)
        case clientReply(ClientReply, client: Int)
        case clientTimeout(client: Int, opID: UInt64)
        case clientNext(client: Int)
        case restart(node: Int)
        case crash(node: Int, restartAfter: Int)
        case fault
        case heal
        case membershipStep
        /// A second before the end: notes how far the group has committed (`catchUpMark`).
        case catchUpMark
    }

    let params: SimParameters
    var rng: SplitMix64
    var queue = EventQueue<Event>()
    var now = 0
    var nodes: [SimNode] = []
    var clients: [SimClient] = []
    var history: [Int: [RegisterOperation]] = [:]   // by key
    var blocked: Set<[NodeID]> = []                    // directed links that drop messages
    var lossRate: Double
    var duplicateRate: Double
    var healed = false

    // Safety bookkeeping.
    var leaders: [Term: NodeID] = [:]
    var ledger: [Entry] = [Entry(index: 0, term: 0, kind: .noop)]
    var ledgerHash: [UInt64] = [0]
    /// The term of the node that first reported each entry committed (the committing leader's).
    var ledgerCommitTerm: [Term] = [0]
    var failure: String?
    var failedAt: Int?

    // Liveness bookkeeping.
    /// When each term's leader first committed an entry of its own term.
    var leaderEstablishedAt: [Term: Int] = [:]
    /// Client operations started after healing.
    var healedOps: [(client: Int, call: Int, returned: Int, ok: Bool)] = []
    /// What the group had committed a second before the end: every member must hold it by then.
    var catchUpMark: LogIndex = 0

    // Statistics.
    var eventCount = 0
    var crashes = 0
    var snapshotsInstalled = 0
    var operations = 0
    var membershipChanges = 0
    var wipes = 0
    let keepTrace: Bool
    var trace: [String] = []

    public init(_ params: SimParameters, trace: Bool = false) {
        self.params = params
        rng = SplitMix64(seed: params.seed)
        lossRate = params.lossRate
        duplicateRate = params.duplicateRate
        keepTrace = trace
        let ids = Set((1...params.nodeCount).map { NodeID($0) })
        for id in ids.sorted() {
            var config = RaftConfig(id: id, voters: ids)
            config.electionTicks = params.electionTicks
            config.heartbeatTicks = 1
            config.maxInflightMessages = params.maxInflight
            config.maxEntriesPerMessage = params.maxEntriesPerMessage
            config.snapshotChunkBytes = params.snapshotChunkBytes
            config.randomSeed = params.seed &* 31 &+ id
            config.preVote = params.preVote
            config.checkQuorum = params.checkQuorum
            switch params.bug {
            case .commitPreviousTerm: config.testingFaults.commitPreviousTermByCounting = true
            case .skipUpToDateCheck: config.testingFaults.skipLogUpToDateCheck = true
            case .truncateAtFirstEntry: config.testingFaults.truncateAtFirstEntry = true
            case .ignoreIncarnations: config.testingFaults.ignoreIncarnations = true
            default: break
            }
            nodes.append(SimNode(id: id, config: config))
        }
        if params.membershipInterval != .max {
            // Drawn after everything else, so the rest of a seed replays as before.
            for i in nodes.indices { nodes[i].config.incarnation = newIncarnation() }
        }
        clients = (0..<params.clientCount).map { SimClient(id: $0, guess: Int.random(in: 0..<params.nodeCount, using: &rng)) }
    }

    public func run(maxEvents: Int = 3_000_000) -> SimResult {
        for i in nodes.indices { start(node: i) }
        for c in clients.indices { queue.push(.clientNext(client: c), at: Int.random(in: 0...50, using: &rng)) }
        queue.push(.fault, at: params.faultInterval)
        queue.push(.heal, at: params.healAt)
        queue.push(.catchUpMark, at: params.endAt - catchUpMillis)
        if params.membershipInterval != .max { queue.push(.membershipStep, at: params.membershipInterval) }
        while failure == nil, let (time, event) = queue.pop(), time <= params.endAt {
            now = time
            eventCount += 1
            if eventCount > maxEvents { fail("event budget of \(maxEvents) exhausted"); break }
            if keepTrace { record(event) }
            handle(event)
            if failure == nil { checkSafety() }
        }
        if failure == nil { checkLiveness() }
        if failure == nil { checkLinearizability() }
        return SimResult(
            seed: params.seed, parameters: params, failure: failure, failedAt: failedAt,
            events: eventCount, committed: LogIndex(ledger.count - 1), elections: leaders.count,
            operations: operations, crashes: crashes, snapshotsInstalled: snapshotsInstalled,
            membershipChanges: membershipChanges,
            membershipChangesCommitted: ledger.lazy.filter { $0.kind == .membership }.count, wipes: wipes, trace: trace)
    }

    func fail(_ message: String) {
        guard failure == nil else { return }
        failure = message
        failedAt = now
    }

    func random(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    func chance(_ p: Double) -> Bool { p > 0 && Double.random(in: 0..<1, using: &rng) < p }

    // MARK: Events

    func handle(_ event: Event) {
        switch event {
        case .tick(let i, let incarnation):
            guard nodes[i].isUp, nodes[i].incarnation == incarnation else { return }
            nodes[i].core!.tick()
            drive(i)
            scheduleTick(i)
        case .deliver(let message):
            let i = Int(message.to - 1)
            guard nodes[i].isUp, !blocked.contains([message.from, message.to]) else { return }
            nodes[i].core!.step(message)
            drive(i)
        case .diskSynced(let i, let generation):
            guard nodes[i].isUp, nodes[i].writeGeneration == generation, let ready = nodes[i].writing else { return }
            if let hs = ready.hardState {
                let previous = nodes[i].disk.state.hardState
                if hs.term < previous.term {
                    fail("node \(i + 1): durable term went back from \(previous.term) to \(hs.term)")
                }
                if hs.term == previous.term, previous.vote != 0, hs.vote != previous.vote {
                    fail(hs.vote == 0
                        ? "node \(i + 1) forgot its durable vote for \(previous.vote) in term \(hs.term)"
                        : "node \(i + 1) voted for \(previous.vote) and then for \(hs.vote) in term \(hs.term)")
                }
            }
            nodes[i].disk.persist(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot)
            nodes[i].writing = nil
            complete(i, ready, messagesSent: nodes[i].writingMessagesSent)
            nodes[i].writingMessagesSent = false
            drive(i)
        case .clientRequest(let request, let i):
            serve(request, at: i)
        case .clientReply(let reply, let c):
            receive(reply, client: c)
        case .clientTimeout(let c, let opID):
            timeout(client: c, opID: opID)
        case .clientNext(let c):
            startOperation(client: c)
        case .restart(let i):
            if !nodes[i].isUp { start(node: i) }
        case .crash(let i, let restartAfter):
            guard nodes[i].isUp else { return }
            nodes[i].crash(tornPrefix: chance(0.5) ? random(0...6) : nil)
            crashes += 1
            queue.push(.restart(node: i), at: now + restartAfter)
        case .fault:
            guard !healed else { return }
            injectFault()
            queue.push(.fault, at: now + random(params.faultInterval / 2...params.faultInterval * 3 / 2))
        case .membershipStep:
            guard !healed else { return }
            stepMembership()
            queue.push(.membershipStep, at: now + random(params.membershipInterval / 2...params.membershipInterval * 3 / 2))
        case .catchUpMark:
            catchUpMark = LogIndex(ledger.count - 1)
        case .heal:
            healed = true
            let restored = blocked
            blocked = []
            lossRate = 0
            duplicateRate = 0
            for i in nodes.indices where !nodes[i].isUp { start(node: i) }
            reconnected(restored)
        }
    }

    var latestLeader: RaftNode? {
        nodes.compactMap(\.core).filter { $0.role == .leader }.max { $0.term < $1.term }
    }

    func newIncarnation() -> UInt64 { UInt64.random(in: 1...UInt64.max, using: &rng) }

    func start(node i: Int) {
        do {
            try nodes[i].restart(forgetVote: params.bug == .forgetVote)
        } catch {
            fail("node \(i + 1) could not restart from its disk: \(error)")
            return
        }
        scheduleTick(i)
        drive(i)
        // The others' connections to the restarted node come up (unless a fault blocks them).
        let restarted = nodes[i].id
        reconnected(Set(nodes.map(\.id).filter { $0 != restarted && !blocked.contains([$0, restarted]) }.map { [$0, restarted] }))
    }

    func scheduleTick(_ i: Int) {
        let interval = max(1, Int((Double(params.tickMillis) * params.clockSkew[i]).rounded()))
        queue.push(.tick(node: i, incarnation: nodes[i].incarnation), at: now + interval)
    }

    func send(_ message: Message) {
        if !healed, case .voteResponse(let response) = message.body, response.granted, !response.preVote,
           chance(params.crashAfterVoteRate) {
            // The vote goes out; the voter crashes right after and is back within milliseconds.
            let i = Int(message.from - 1)
            queue.push(.crash(node: i, restartAfter: random(1...8)), at: now + 1)
        }
        guard !blocked.contains([message.from, message.to]), !chance(lossRate) else { return }
        queue.push(.deliver(message), at: now + random(params.minDelay...params.maxDelay))
        if chance(duplicateRate) {
            queue.push(.deliver(message), at: now + random(params.minDelay...params.maxDelay * 3))
        }
    }

    /// Carries out the node's `Ready`s: the disk write takes time; what depends on it waits.
    func drive(_ i: Int) {
        var rounds = 0
        while failure == nil, nodes[i].isUp, nodes[i].writing == nil, nodes[i].core!.hasReady {
            rounds += 1
            if rounds > 10_000 { return fail("node \(i + 1): its Ready output never settles (\(nodes[i].core!.role), term \(nodes[i].core!.term))") }
            let ready = nodes[i].core!.ready()
            if ready.needsPersisting {
                nodes[i].writing = ready
                nodes[i].writeGeneration += 1
                if params.bug == .ackBeforeSync {
                    ready.messages.forEach(send)
                    nodes[i].writingMessagesSent = true
                }
                queue.push(.diskSynced(node: i, generation: nodes[i].writeGeneration),
                           at: now + random(0...params.diskMaxLatency))
                return
            }
            complete(i, ready, messagesSent: false)
        }
    }

    func complete(_ i: Int, _ ready: Ready, messagesSent: Bool) {
        if !messagesSent { ready.messages.forEach(send) }
        if let snap = ready.snapshot {
            guard let restored = KVStateMachine(serialized: snap.data), restored.applied == snap.metadata.index else {
                fail("node \(i + 1): snapshot at \(snap.metadata.index) does not decode to that index")
                return
            }
            nodes[i].stateMachine = restored
            snapshotsInstalled += 1
            checkApplied(i)
        }
        for entry in ready.committedEntries {
            guard entry.index == nodes[i].stateMachine.applied + 1 else {
                fail("node \(i + 1): asked to apply \(entry.index) after \(nodes[i].stateMachine.applied)")
                return
            }
            nodes[i].stateMachine.apply(entry)
            checkApplied(i)
            resolveProposal(i, entry)
        }
        for state in ready.readStates { readIndexKnown(i, state) }
        for context in ready.abandonedReads { abandonRead(i, context) }
        answerReadsAwaitingApply(i)
        nodes[i].core!.advance(ready)
        maybeCompact(i)
    }

    func maybeCompact(_ i: Int) {
        guard params.compactEvery != .max, let core = nodes[i].core else { return }
        let base = core.snapshotMetadata?.index ?? 0
        let applied = nodes[i].stateMachine.applied
        guard applied >= base + LogIndex(params.compactEvery) else { return }
        observeCommits(i) // the ledger must see entries before they are compacted away
        do {
            let snap = try nodes[i].core!.compact(through: applied, data: nodes[i].stateMachine.serialized)
            nodes[i].disk.saveCompactionSnapshot(snap)
        } catch {
            fail("node \(i + 1): compaction through \(applied) failed: \(error)")
        }
    }

    func injectFault() {
        let up = nodes.indices.filter { nodes[$0].isUp }
        switch random(0...9) {
        case 0...2 where !up.isEmpty:
            let i = up[random(0...up.count - 1)]
            if params.wipeRate > 0, !nodes.contains(where: \.awaitingReplacement), chance(params.wipeRate),
               let leader = latestLeader, !leader.membershipChangePending,
               leader.membership.voters.count >= 3 || !leader.membership.voters.contains(nodes[i].id) {
                // One wiped node at a time, and never one of two voters, nor while a change that
                // may remove a voter is under way: that would be a lost majority, which no
                // protocol survives.
                nodes[i].wipe(newIncarnation: newIncarnation())
                wipes += 1
                if keepTrace { trace.append("\(now)ms wipe node \(i + 1): incarnation \(hexIncarnation(nodes[i].config.incarnation))") }
            } else {
                let torn: Int? = chance(0.5) ? random(0...6) : nil
                nodes[i].crash(tornPrefix: torn)
            }
            crashes += 1
            let back = now + random(20...2_000)
            if back < params.healAt { queue.push(.restart(node: i), at: back) }
        case 3...4:
            // Isolate one node both ways.
            let isolated = NodeID(random(1...params.nodeCount))
            for other in nodes.map(\.id) where other != isolated {
                blocked.insert([isolated, other])
                blocked.insert([other, isolated])
            }
        case 5:
            // Split into two groups.
            let ids = nodes.map(\.id).shuffled(using: &rng)
            let cut = random(1...ids.count - 1)
            for a in ids[..<cut] {
                for b in ids[cut...] {
                    blocked.insert([a, b])
                    blocked.insert([b, a])
                }
            }
        case 6:
            // One-way: a node hears nothing from another, or cannot reach it.
            let a = NodeID(random(1...params.nodeCount))
            var b = NodeID(random(1...params.nodeCount))
            if a == b { b = a % NodeID(params.nodeCount) + 1 }
            blocked.insert([a, b])
        default:
            let restored = blocked
            blocked = []
            reconnected(restored)
        }
    }

    /// Links that work again, as a shell's transport would report them: the sending side learns
    /// its connection to the receiver is up.
    func reconnected(_ links: Set<[NodeID]>) {
        for link in links.sorted(by: { ($0[0], $0[1]) < ($1[0], $1[1]) }) {
            let i = Int(link[0]) - 1
            guard nodes[i].isUp else { continue }
            nodes[i].core!.peerReconnected(link[1])
            drive(i)
        }
    }

    func record(_ event: Event) {
        let text: String
        switch event {
        case .tick: return
        case .deliver(let m): text = "deliver \(m.from)->\(m.to) t\(m.term) \(m.body)"
        case .diskSynced(let i, let g): text = "disk synced node \(i + 1) gen \(g)"
        case .clientRequest(let r, let i): text = "client \(r.client) -> node \(i + 1): \(r)"
        case .clientReply(let r, let c): text = "node -> client \(c): \(r)"
        case .clientTimeout(let c, let op): text = "client \(c) op \(op) timed out"
        case .clientNext(let c): text = "client \(c) next op"
        case .restart(let i): text = "restart node \(i + 1)"
        case .crash(let i, _): text = "crash node \(i + 1)"
        case .fault: text = "fault (blocked now \(blocked.count) links)"
        case .heal: text = "heal"
        case .membershipStep: text = "membership step"
        case .catchUpMark: text = "catch-up mark: \(ledger.count - 1) committed"
        }
        trace.append("\(now)ms \(text)")
    }
}
