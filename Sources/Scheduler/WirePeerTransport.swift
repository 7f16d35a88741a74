import Logging
import Raft
import Wire

/// Sends Raft messages to the other schedulers over the wire: two reconnecting connections per
/// peer, one per `RaftLane`, each fed by a bounded queue. A heartbeat or a vote never waits
/// behind a megabyte of entries. When a peer is down or slow, the oldest queued messages are
/// dropped (Raft retransmits), so a dead peer never holds up the others.
public final class WirePeerTransport: RaftTransport {
    private struct Lane: Sendable {
        let queue: AsyncStream<Raft.Message>.Continuation
        let stream: AsyncStream<Raft.Message>
        let client: ReconnectingWireClient
    }

    private let lanes: [NodeID: [RaftLane: Lane]]
    /// Each peer whose control connection has just come up, for the replica
    /// (`RaftNode.peerReconnected` asks again for votes it may have lost).
    public let reconnections: AsyncStream<NodeID>

    public init(peers: [NodeID: ReconnectingWireClient.Target], configuration: WireConfiguration, logger: Logger) {
        let (reconnections, reconnected) = AsyncStream<NodeID>.makeStream(bufferingPolicy: .bufferingNewest(64))
        self.reconnections = reconnections
        var lanes: [NodeID: [RaftLane: Lane]] = [:]
        for (id, target) in peers {
            for kind in RaftLane.allCases {
                let (stream, queue) = AsyncStream<Raft.Message>.makeStream(bufferingPolicy: .bufferingNewest(4096))
                let announces = kind == .control
                let onConnected: @Sendable () -> Void = { if announces { reconnected.yield(id) } }
                let client = ReconnectingWireClient(
                    target: target, configuration: configuration,
                    // Redialling a peer is cheap and a returning peer may complete a quorum: a short
                    // cap keeps the time from its restart to the next election small.
                    backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(250)), logger: logger,
                    onConnected: onConnected)
                lanes[id, default: [:]][kind] = Lane(queue: queue, stream: stream, client: client)
            }
        }
        self.lanes = lanes
    }

    public func send(_ message: Raft.Message) {
        lanes[message.to]?[RaftLane.of(message.body)]?.queue.yield(message)
    }

    /// Keeps the connections up and drains the queues until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for lane in lanes.values.flatMap(\.values) {
                group.addTask { await lane.client.run() }
                group.addTask {
                    for await message in lane.stream {
                        guard let connection = try? await lane.client.connection(within: .milliseconds(200)) else { continue }
                        connection.trySendOneWay(.raftMessage(RaftWireMapping.wire(message)))
                    }
                }
            }
        }
    }

    /// Whether both connections to a peer are up now, for status.
    public func isConnected(_ id: NodeID) async -> Bool {
        guard let peer = lanes[id] else { return false }
        for lane in peer.values where await !lane.client.isConnected { return false }
        return true
    }

    /// Connections made to a peer on one lane since start (tests read it).
    func connectCount(to id: NodeID, lane: RaftLane) async -> Int {
        await lanes[id]?[lane]?.client.connectCount ?? 0
    }
}
