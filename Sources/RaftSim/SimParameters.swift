import Raft
import Seeded

/// Faults the simulator can inject on purpose, to prove its checkers catch real Raft bugs.
public enum InjectedBug: String, Sendable, CaseIterable {
    /// A restarted node forgets whom it voted for (its vote was never made durable).
    case forgetVote = "forget-vote"
    /// Entries of earlier terms are committed by counting replicas (the paper's figure 8).
    case commitPreviousTerm = "commit-previous-term"
    /// Votes are granted without checking that the candidate's log is up to date.
    case skipUpToDateCheck = "skip-up-to-date-check"
    /// Appends truncate at their first entry even when it matches (stale appends cut the log).
    case truncateAtFirstEntry = "truncate-at-first-entry"
    /// A node acknowledges before its disk write is durable.
    case ackBeforeSync = "ack-before-sync"
    /// Votes count whatever incarnation they come from: a wiped disk votes again under its id.
    case ignoreIncarnations = "ignore-incarnations"
}

/// Everything about one simulated run, drawn from its seed. Times are simulated milliseconds.
public struct SimParameters: Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var nodeCount: Int
    public var clientCount: Int
    public var keyCount: Int
    /// Faults are injected until `healAt`; the liveness phase runs until `endAt`.
    public var healAt: Int
    public var endAt: Int
    public var tickMillis: Int
    /// Per-node clock rate: a node's tick takes tickMillis × skew.
    public var clockSkew: [Double]
    public var minDelay: Int
    public var maxDelay: Int
    public var lossRate: Double
    public var duplicateRate: Double
    public var diskMaxLatency: Int
    /// Mean time between faults (crash, restart, partition, heal) in the fault phase.
    public var faultInterval: Int
    /// Compact after this many applied entries (Int.max: never).
    public var compactEvery: Int
    public var snapshotChunkBytes: Int
    public var maxEntriesPerMessage: Int
    public var maxInflight: Int
    public var clientTimeout: Int
    /// Group settings vary by seed too: the defaults most of the time, the rest off sometimes.
    /// Election timeout in ticks; sometimes close to the network delay, which makes split votes
    /// and concurrent candidates in one term common.
    public var electionTicks: Int
    public var preVote: Bool
    public var checkQuorum: Bool
    /// Chance that a node which has just granted a vote crashes at once and restarts quickly:
    /// the moment at which an unpersisted vote would be lost.
    public var crashAfterVoteRate: Double
    /// Mean time between an operator's membership steps in the fault phase (Int.max: none). Each
    /// step moves one node along remove → add as learner → promote, at whichever node leads.
    public var membershipInterval: Int
    /// Chance that a crash also wipes the node's disk (seeds with membership changes only: the
    /// operator then replaces the wiped node, as `junction ctl replace-member` does). Nodes
    /// carry incarnations on those seeds, so a wiped one cannot vote until it is replaced.
    public var wipeRate: Double
    public var bug: InjectedBug?

    public init(seed: UInt64, nodeCount: Int? = nil, bug: InjectedBug? = nil) {
        var rng = SplitMix64(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ 7)
        func pick(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
        func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
        self.seed = seed
        self.nodeCount = nodeCount ?? (chance(0.75) ? 3 : 5)
        clientCount = pick(2...4)
        keyCount = pick(1...3)
        tickMillis = 10
        healAt = pick(2_000...5_000)
        endAt = healAt + 3_000
        let skewSpread = chance(0.5) ? 0.2 : 0.05
        clockSkew = (0..<self.nodeCount).map { _ in 1 + Double.random(in: -skewSpread...skewSpread, using: &rng) }
        minDelay = 1
        maxDelay = pick(2...12)
        lossRate = chance(0.3) ? 0 : Double.random(in: 0...0.15, using: &rng)
        duplicateRate = chance(0.5) ? 0 : Double.random(in: 0...0.08, using: &rng)
        diskMaxLatency = pick(0...4)
        faultInterval = pick(100...600)
        compactEvery = chance(0.2) ? Int.max : pick(5...60)
        snapshotChunkBytes = pick(8...64)
        maxEntriesPerMessage = pick(1...8)
        maxInflight = pick(1...8)
        clientTimeout = 400
        electionTicks = chance(0.7) ? 10 : pick(3...5)
        // Raft promises liveness only when the election timeout comfortably exceeds the time a
        // heartbeat takes to arrive (broadcast time ≪ election timeout): short elections are kept
        // for networks fast enough for them. Found by seed 2817: 3 ticks on the fastest clock
        // (24 ms) against 12 ms heartbeats on the slowest plus 12 ms of delay and 12 % loss, so a
        // follower timed out under a working leader 2.3 s after healing.
        let slowestHeartbeat = Double(tickMillis) * (clockSkew.max() ?? 1) + Double(maxDelay)
        let fastestTick = Double(tickMillis) * (clockSkew.min() ?? 1)
        electionTicks = max(electionTicks, Int((2 * slowestHeartbeat / fastestTick).rounded(.up)))
        preVote = chance(0.7)
        checkQuorum = chance(0.8)
        crashAfterVoteRate = chance(0.5) ? 0 : Double.random(in: 0.05...0.4, using: &rng)
        // Drawn last, so every other parameter of a seed is what it was before this existed.
        membershipInterval = chance(0.5) ? pick(100...600) : .max
        wipeRate = membershipInterval == .max || chance(0.5) ? 0 : Double.random(in: 0.2...0.6, using: &rng)
        if bug == .ignoreIncarnations {
            // Only wipes can show it: every seed gets them, often.
            membershipInterval = min(membershipInterval, pick(100...600))
            wipeRate = 0.8
        }
        // Membership changes need check-quorum's lease (the core refuses them otherwise): without
        // it a removed node that does not know it was removed raises the terms of the members
        // that still count it, for ever (Raft thesis, §4.2.3; raft-sim seed 2937).
        if membershipInterval != .max { checkQuorum = true }
        self.bug = bug
    }

    public var description: String {
        "nodes=\(nodeCount) clients=\(clientCount) keys=\(keyCount) heal=\(healAt)ms end=\(endAt)ms "
            + "delay=\(minDelay)-\(maxDelay)ms loss=\(pct(lossRate)) dup=\(pct(duplicateRate)) "
            + "disk<=\(diskMaxLatency)ms faults/\(faultInterval)ms compact=\(compactEvery == .max ? "never" : String(compactEvery)) "
            + "chunk=\(snapshotChunkBytes)B inflight=\(maxInflight) election=\(electionTicks)ticks preVote=\(preVote) checkQuorum=\(checkQuorum) "
            + "crashAfterVote=\(pct(crashAfterVoteRate)) membership=\(membershipInterval == .max ? "fixed" : "every ~\(membershipInterval)ms") "
            + "wipes=\(pct(wipeRate))"
    }

    private func pct(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }
}
