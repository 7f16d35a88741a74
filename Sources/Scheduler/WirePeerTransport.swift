import Logging
import Raft
import Wire

/// Sends Raft messages to the other schedulers over the wire: one reconnecting connection per
/// peer, fed by a bounded queue. When a peer is down or slow, the oldest queued messages are
/// dropped (Raft retransmits), so a dead peer never holds up the others.
public final class WirePeerTransport: RaftTransport {
    private let queues: [NodeID: AsyncStream<Raft.Message>.Continuation]
    private let streams: [NodeID: AsyncStream<Raft.Message>]
    private let clients: [NodeID: ReconnectingWireClient]
    /// Each peer whose connection has just come up, for the replica (`RaftNode.peerReconnected`).
    public let reconnections: AsyncStream<NodeID>

    public init(peers: [NodeID: ReconnectingWireClient.Target], configuration: WireConfiguration, logger: Logger) {
        var queues: [NodeID: AsyncStream<Raft.Message>.Continuation] = [:]
        var streams: [NodeID: AsyncStream<Raft.Message>] = [:]
        var clients: [NodeID: ReconnectingWireClient] = [:]
        let (reconnections, reconnected) = AsyncStream<NodeID>.makeStream(bufferingPolicy: .bufferingNewest(64))
        self.reconnections = reconnections
        for (id, target) in peers {
            let (stream, continuation) = AsyncStream<Raft.Message>.makeStream(bufferingPolicy: .bufferingNewest(4096))
            queues[id] = continuation
            streams[id] = stream
            clients[id] = ReconnectingWireClient(
                target: target, configuration: configuration,
                // Redialling a peer is cheap and a returning peer may complete a quorum: a short
                // cap keeps the time from its restart to the next election small.
                backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(250)), logger: logger,
                onConnected: { reconnected.yield(id) })
        }
        self.queues = queues
        self.streams = streams
        self.clients = clients
    }

    public func send(_ message: Raft.Message) {
        queues[message.to]?.yield(message)
    }

    /// Keeps the connections up and drains the queues until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for (id, client) in clients {
                group.addTask { await client.run() }
                guard let stream = streams[id] else { continue }
                group.addTask {
                    for await message in stream {
                        guard let connection = try? await client.connection(within: .milliseconds(200)) else { continue }
                        connection.trySendOneWay(.raftMessage(RaftWireMapping.wire(message)))
                    }
                }
            }
        }
    }

    /// Whether the connection to a peer is up now, for status.
    public func isConnected(_ id: NodeID) async -> Bool {
        await clients[id]?.isConnected ?? false
    }
}
