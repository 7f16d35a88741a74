import Logging
import Raft
@testable import Scheduler
import Synchronization
import Testing
import Wire

/// What a peer received over its Raft connections.
private final class RaftRecorder: WireService {
    let state = Mutex<(appends: Int, heartbeatRounds: Set<UInt64>)>((0, []))

    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
        throw WireError(.unimplemented, "only Raft messages here")
    }

    func receiveOneWay(_ message: Envelope.Body, from peer: PeerIdentity) -> WireError? {
        guard case .raftMessage(let wire) = message, let message = try? RaftWireMapping.core(wire) else { return nil }
        state.withLock {
            switch message.body {
            case .append: $0.appends += 1
            case .heartbeat(let heartbeat): $0.heartbeatRounds.insert(heartbeat.readRound)
            default: break
            }
        }
        return nil
    }
}

@Suite struct RaftLaneTests {
    @Test func appendsAndSnapshotChunksTravelApartFromEverythingElse() {
        let metadata = SnapshotMetadata(index: 1, term: 1, membership: Membership(voters: [1, 2, 3]))
        let bulk: [Raft.Message.Body] = [
            .append(AppendRequest(prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0)),
            .append(AppendRequest(prevLogIndex: 0, prevLogTerm: 0, entries: [Entry(index: 1, term: 1)], leaderCommit: 0)),
            .snapshotChunk(SnapshotChunk(metadata: metadata, offset: 0, totalSize: 1, data: [1], done: true)),
        ]
        let control: [Raft.Message.Body] = [
            .voteRequest(VoteRequest(preVote: true, lastLogIndex: 1, lastLogTerm: 1, leadershipTransfer: false)),
            .voteResponse(VoteResponse(preVote: false, granted: true)),
            .appendResponse(AppendResponse(success: true, matchIndex: 1)),
            .heartbeat(Heartbeat(commit: 1, readRound: 0)),
            .heartbeatResponse(HeartbeatResponse(readRound: 0)),
            .snapshotResponse(SnapshotResponse(snapshotIndex: 1, nextOffset: 1, accepted: true, installed: true)),
            .timeoutNow,
        ]
        #expect(bulk.allSatisfy { RaftLane.of($0) == .bulk })
        #expect(control.allSatisfy { RaftLane.of($0) == .control })
    }

    /// The promise: a follower that reads its appends slowly still hears the leader's heartbeats,
    /// so a megabyte of entries in flight never costs an election. On one shared connection the
    /// heartbeat would sit behind every queued append until the stall ended.
    @Test func aHeartbeatReachesAPeerWhoseAppendConnectionIsStalled() async throws {
        let secret = "raft-lane-test-secret"
        let recorder = RaftRecorder()
        let server = try await WireServer.bind(
            host: "127.0.0.1", port: 0,
            configuration: WireConfiguration(role: .scheduler, nodeID: "2", clusterSecret: secret), service: recorder)
        let forwarder = try await StallableForwarder.start(to: server.port)
        let transport = WirePeerTransport(
            peers: [2: ReconnectingWireClient.Target(host: "127.0.0.1", port: forwarder.port)],
            configuration: WireConfiguration(role: .scheduler, nodeID: "1", clusterSecret: secret),
            logger: Logger(label: "raft-lane-test"))
        try await withThrowingTaskGroup { group in
            group.addTask { try await server.run() }
            group.addTask { await transport.run() }
            defer { group.cancelAll() }

            let entry = [UInt8](repeating: 7, count: 1 << 20)
            func append(after index: LogIndex) -> Raft.Message {
                Raft.Message(from: 1, to: 2, term: 1, body: .append(AppendRequest(
                    prevLogIndex: index, prevLogTerm: 1, entries: [Entry(index: index + 1, term: 1, data: entry)], leaderCommit: 0)))
            }
            func heartbeat(round: UInt64) -> Raft.Message {
                Raft.Message(from: 1, to: 2, term: 1, body: .heartbeat(Heartbeat(commit: 0, readRound: round)))
            }

            // The transport drops what it cannot send within 200 ms (Raft retransmits), so the
            // test resends as a leader would until the message is seen.
            var appendsSent = 0
            try await waitUntil("the first append and heartbeat arrive", resending: {
                if recorder.state.withLock({ $0.appends }) == 0 {
                    transport.send(append(after: 0))
                    appendsSent += 1
                }
                transport.send(heartbeat(round: 1))
            }) {
                recorder.state.withLock { $0.appends >= 1 && $0.heartbeatRounds.contains(1) }
            }
            // Only the appends' connection has carried a megabyte: stall it, then queue far more
            // than the sockets between the two sides can buffer (80 MiB against a few MiB).
            #expect(try await forwarder.stall(carriedMoreThan: 512 << 10) == 1)
            for index in 1...LogIndex(80) { transport.send(append(after: index)) }
            appendsSent += 80
            try await waitUntil("a heartbeat sent after the stalled appends arrives", resending: {
                transport.send(heartbeat(round: 2))
            }) {
                recorder.state.withLock { $0.heartbeatRounds.contains(2) }
            }
            // The appends' connection really was held up, and still is, while the heartbeat went
            // through (on one shared connection it arrives only once keepalive has closed it).
            #expect(forwarder.stalledConnectionsAreOpen)
            #expect(recorder.state.withLock { $0.appends } < appendsSent)
        }
        await forwarder.close()
        server.close()
    }

    /// Waits for `done`, calling `resending` every 100 ms meanwhile (and once at the start).
    private func waitUntil(
        _ what: String, within limit: Duration = .seconds(60), resending: () -> Void, _ done: () -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var nextSend = clock.now
        while !done() {
            guard clock.now < deadline else {
                Issue.record("\(what): not seen within \(limit)")
                throw CancellationError()
            }
            if clock.now >= nextSend {
                resending()
                nextSend = clock.now + .milliseconds(100)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
