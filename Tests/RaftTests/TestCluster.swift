@testable import Raft
import XCTest
#if canImport(Glibc)
#endif

/// Raft nodes wired together in memory, driven by hand: tests decide which messages are
/// delivered, dropped or held back, and when nodes tick, crash and restart.
struct TestCluster {
    var nodes: [NodeID: RaftNode] = [:]
    var storage: [NodeID: MemoryStorage] = [:]
    /// Messages sent and not yet delivered, in order.
    var inFlight: [Message] = []
    /// Directed links that drop messages.
    var cut: Set<[NodeID]> = []
    /// Messages for which this returns false are dropped too.
    var filter: (Message) -> Bool = { _ in true }
    /// What was delivered, by kind, for tests that count messages.
    var delivered: [String: Int] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    var abandonedReads: [NodeID: [UInt64]] = [:]
    var installedSnapshots: [NodeID: [Snapshot]] = [:]
    var configure: (inout RaftConfig) -> Void

    init(_ count: Int, configure: @escaping (inout RaftConfig) -> Void = { _ in }) {
        self.configure = configure
        for id in 1...NodeID(count) {
            storage[id] = MemoryStorage()
            nodes[id] = try! RaftNode(config: config(id, count), persisted: .init())
        }
    }

    func config(_ id: NodeID, _ count: Int) -> RaftConfig {
        var config = RaftConfig(id: id, voters: Set(1...NodeID(count)))
        config.randomSeed = id
        configure(&config)
        return config
    }

    var ids: [NodeID] { nodes.keys.sorted() }

    /// Carries out every node's Ready: persist, queue the messages, apply, advance.
    mutating func flush() {
        for id in ids {
            while nodes[id]!.hasReady {
                let ready = nodes[id]!.ready()
                storage[id]!.persist(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot)
                inFlight.append(contentsOf: ready.messages)
                readStates[id, default: []].append(contentsOf: ready.readStates)
                abandonedReads[id, default: []].append(contentsOf: ready.abandonedReads)
                if let snap = ready.snapshot { installedSnapshots[id, default: []].append(snap) }
                nodes[id]!.advance(ready)
            }
        }
    }

    /// Delivers messages (and what they cause) until nothing is in flight, or gives up after
    /// `limit` deliveries (a group whose safety a testing fault broke may never settle).
    @discardableResult
    mutating func stabilize(limit: Int = 10_000) -> Bool {
        var steps = 0
        flush()
        while !inFlight.isEmpty {
            if steps == limit { return false }
            deliver(inFlight.removeFirst())
            flush()
            steps += 1
        }
        return true
    }

    mutating func deliver(_ message: Message) {
        guard !cut.contains([message.from, message.to]), nodes[message.to] != nil, filter(message) else { return }
        delivered[message.kindName, default: 0] += 1
        nodes[message.to]!.step(message)
    }

    mutating func isolate(_ id: NodeID) {
        for other in ids where other != id {
            cut.insert([id, other])
            cut.insert([other, id])
        }
    }

    mutating func heal() { cut = [] }

    /// Starts an election at `id` directly and lets it play out.
    /// Starts elections at `id` until it wins (at most a few rounds: rejections raise its term).
    mutating func elect(_ id: NodeID, file: StaticString = #filePath, line: UInt = #line) {
        for _ in 0..<4 where nodes[id]!.role != .leader {
            nodes[id]!.campaign(nodes[id]!.config.preVote ? .preElection : .election)
            stabilize()
        }
        XCTAssertEqual(nodes[id]!.role, .leader, "node \(id) did not win its election", file: file, line: line)
    }

    /// Campaigns at `id` and delivers only until it leads: its no-op is appended, not committed.
    mutating func electBeforeItsNoopCommits(_ id: NodeID, file: StaticString = #filePath, line: UInt = #line) {
        nodes[id]!.campaign(.preElection)
        flush()
        while nodes[id]!.role != .leader, !inFlight.isEmpty {
            deliver(inFlight.removeFirst())
            flush()
        }
        XCTAssertEqual(nodes[id]!.role, .leader, "node \(id) did not win its election", file: file, line: line)
    }

    mutating func tick(_ id: NodeID, times: Int = 1) {
        for _ in 0..<times { nodes[id]!.tick() }
    }

    mutating func tickAll(times: Int = 1) {
        for _ in 0..<times {
            for id in ids { nodes[id]!.tick() }
            stabilize()
        }
    }

    /// Loses the node's memory; it comes back from its storage only.
    mutating func restart(_ id: NodeID, from persisted: PersistedState? = nil) {
        nodes[id] = try! RaftNode(config: nodes[id]!.config, persisted: persisted ?? storage[id]!.load())
        inFlight.removeAll { $0.to == id }
    }

    mutating func propose(_ id: NodeID, _ text: String) throws {
        try nodes[id]!.propose(Array(text.utf8))
    }

    func leader() -> NodeID? {
        ids.filter { nodes[$0]!.role == .leader }.max { nodes[$0]!.term < nodes[$1]!.term }
    }

    func log(_ id: NodeID) -> [Entry] {
        let node = nodes[id]!
        guard node.lastIndex >= node.firstIndex else { return [] }
        return (node.firstIndex...node.lastIndex).map { node.entry(at: $0)! }
    }
}

extension Message {
    var kindName: String {
        switch body {
        case .voteRequest: "voteRequest"
        case .voteResponse: "voteResponse"
        case .append: "append"
        case .appendResponse: "appendResponse"
        case .heartbeat: "heartbeat"
        case .heartbeatResponse: "heartbeatResponse"
        case .snapshotChunk: "snapshotChunk"
        case .snapshotResponse: "snapshotResponse"
        case .timeoutNow: "timeoutNow"
        }
    }

    var appendedEntries: [Entry] {
        if case .append(let request) = body { return request.entries }
        return []
    }
}

extension Entry {
    var text: String { String(decoding: data, as: UTF8.self) }
}
