import Raft

/// Runs many seeds, `jobs` at a time, and totals what they did.
public enum SimulationRunner {
    public struct Summary: Sendable, CustomStringConvertible {
        public var seeds = 0
        public var failed = 0
        public var failedSeeds: [UInt64] = []
        public var events = 0
        public var committed: UInt64 = 0
        public var operations = 0
        public var crashes = 0
        public var snapshotsInstalled = 0
        public var elections = 0
        public var membershipChanges = 0
        public var membershipChangesCommitted = 0
        public var wipes = 0

        public var description: String {
            "raft-sim: \(seeds) seeds, \(failed) failed\(failedSeeds.isEmpty ? "" : " \(failedSeeds.prefix(20).map(String.init))"); "
                + "\(events) events, \(committed) entries committed, \(elections) leaders elected, "
                + "\(operations) client operations, \(crashes) crashes, \(snapshotsInstalled) snapshots installed, "
                + "\(membershipChanges) membership changes proposed by the operator, \(membershipChangesCommitted) membership entries committed (with the leaders' claims), \(wipes) disks wiped"
        }
    }

    public static func run(firstSeed: UInt64, count: Int, nodes: Int? = nil, bug: InjectedBug? = nil,
                           jobs: Int = 2, trace: Bool = false, stopAfterFailures: Int = .max,
                           onResult: @Sendable (SimResult) -> Void = { _ in }) async -> Summary {
        var summary = Summary()
        await withTaskGroup(of: SimResult.self) { group in
            var next = 0
            func launch() {
                let seed = firstSeed + UInt64(next)
                next += 1
                group.addTask {
                    Simulation(SimParameters(seed: seed, nodeCount: nodes, bug: bug), trace: trace).run()
                }
            }
            while next < min(jobs, count) { launch() }
            for await result in group {
                summary.seeds += 1
                summary.events += result.events
                summary.committed += result.committed
                summary.operations += result.operations
                summary.crashes += result.crashes
                summary.snapshotsInstalled += result.snapshotsInstalled
                summary.elections += result.elections
                summary.membershipChanges += result.membershipChanges
                summary.membershipChangesCommitted += result.membershipChangesCommitted
                summary.wipes += result.wipes
                if result.failure != nil {
                    summary.failed += 1
                    summary.failedSeeds.append(result.seed)
                }
                onResult(result)
                if next < count, summary.failed < stopAfterFailures { launch() }
            }
        }
        summary.failedSeeds.sort()
        return summary
    }
}
