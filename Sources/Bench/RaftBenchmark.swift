import Foundation
import Raft
import RaftStore

/// A 3-node Raft group in one process on file storage with fsync on, driven by one thread:
/// commits per second and commit latency, one proposal at a time versus batches.
public enum RaftBenchmark {
    struct Group {
        var nodes: [RaftNode]
        var stores: [FileStorage]
        var inbox: [Message] = []
        var fsyncs = 0

        /// Persists (fsync), delivers and applies until every node is idle.
        mutating func pump() throws {
            while true {
                var worked = false
                for i in nodes.indices where nodes[i].hasReady {
                    worked = true
                    let ready = nodes[i].ready()
                    if ready.needsPersisting {
                        try stores[i].persist(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot)
                        fsyncs += 1
                    }
                    inbox += ready.messages
                    nodes[i].advance(ready)
                }
                let batch = inbox
                inbox = []
                for message in batch { nodes[Int(message.to - 1)].step(message) }
                if !worked && batch.isEmpty { return }
            }
        }
    }

    public struct Result: Sendable {
        public var batchSize: Int
        public var commits: Int
        public var seconds: Double
        public var latency: LatencySummary
        public var fsyncsPerCommit: Double
    }

    static func makeGroup(directory: String) throws -> (Group, leader: Int) {
        let ids: [NodeID] = [1, 2, 3]
        let stores = try ids.map { try FileStorage(directory: "\(directory)/node\($0)") }
        let nodes = try ids.map { id in
            var config = RaftConfig(id: id, voters: Set(ids))
            config.randomSeed = id
            return try RaftNode(config: config, persisted: stores[Int(id - 1)].load())
        }
        var group = Group(nodes: nodes, stores: stores)
        for _ in 0..<100 where !group.nodes.contains(where: { $0.role == .leader }) {
            for i in group.nodes.indices { group.nodes[i].tick() }
            try group.pump()
        }
        guard let leader = group.nodes.firstIndex(where: { $0.role == .leader }) else {
            throw RaftError.invalidRequest("no leader elected")
        }
        return (group, leader)
    }

    /// Proposes `total` commands of `commandBytes`, `batchSize` at a time, waiting for each batch
    /// to commit; a command's latency runs from its proposal to the commit that covers it.
    public static func run(batchSize: Int, total: Int, commandBytes: Int = 128) throws -> Result {
        let directory = NSTemporaryDirectory() + "junction-bench-raft-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var (group, leader) = try makeGroup(directory: directory)
        let command = [UInt8](repeating: 0x5A, count: commandBytes)
        let clock = ContinuousClock()
        var latencies: [Double] = []
        latencies.reserveCapacity(total)
        let fsyncsBefore = group.fsyncs
        let start = clock.now
        var proposed = 0
        while proposed < total {
            let count = min(batchSize, total - proposed)
            let batchStart = clock.now
            var last: LogIndex = 0
            for _ in 0..<count { last = try group.nodes[leader].propose(command).index }
            while group.nodes[leader].commitIndex < last { try group.pump() }
            let elapsed = (clock.now - batchStart).nanoseconds
            latencies += Array(repeating: elapsed, count: count)
            proposed += count
        }
        let seconds = (clock.now - start).nanoseconds / 1e9
        return Result(batchSize: batchSize, commits: total, seconds: seconds,
                      latency: LatencySummary(nanoseconds: latencies),
                      fsyncsPerCommit: Double(group.fsyncs - fsyncsBefore) / Double(total))
    }

    public static func report(total: Int) throws {
        print("Raft: 3 nodes in one process, file storage with fsync, 128-byte commands, one thread")
        print("(each commit waits for the leader's fsync and one follower's; here they run one after another)")
        var baseline: Double?
        for batch in [1, 16, 256] {
            let result = try run(batchSize: batch, total: batch == 1 ? min(total, 2_000) : total)
            let rate = Double(result.commits) / result.seconds
            let ratio = baseline.map { String(format: " (%.1fx unbatched)", rate / $0) } ?? ""
            if baseline == nil { baseline = rate }
            print(String(format: "  batch %4d: %8.0f commits/s%@  latency p50 %@  p99 %@  fsyncs/commit %.2f",
                         batch, rate, ratio, formatMicros(result.latency.p50), formatMicros(result.latency.p99),
                         result.fsyncsPerCommit))
        }
    }
}
