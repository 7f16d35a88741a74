import Logging
import Raft
import Synchronization
import Wire

/// Sends Raft messages to the other schedulers over the wire: two reconnecting connections per
/// peer, one per `RaftLane`, each fed by a bounded queue. A heartbeat or a vote never waits
/// behind a megabyte of entries. When a peer is down or slow, the oldest queued messages are
/// dropped (Raft retransmits), so a dead peer never holds up the others. The peers follow the
/// applied membership (`setPeers`): a member added is dialled, a removed one let go.
public final class WirePeerTransport: RaftTransport {
    private struct Lane: Sendable {
        let queue: AsyncStream<Raft.Message>.Continuation
        let stream: AsyncStream<Raft.Message>
        let client: ReconnectingWireClient
    }

    private struct Peer: Sendable {
        let id: NodeID
        let target: ReconnectingWireClient.Target
        let lanes: [RaftLane: Lane]
        /// Finished when the peer is let go: its connections' tasks end.
        let stop: AsyncStream<Never>.Continuation
        let stopped: AsyncStream<Never>
    }

    private let peers: Mutex<[NodeID: Peer]>
    /// Peers added after `run` started, for it to serve.
    private let added: AsyncStream<Peer>.Continuation
    private let additions: AsyncStream<Peer>
    private let configuration: WireConfiguration
    private let logger: Logger
    private let reconnected: AsyncStream<NodeID>.Continuation
    /// Each peer whose control connection has just come up, for the replica
    /// (`RaftNode.peerReconnected` asks again for votes it may have lost).
    public let reconnections: AsyncStream<NodeID>
    /// Where this node listens, sent in its heartbeats and vote requests (`sender_address`).
    private let ownAddress: String

    public init(peers initial: [NodeID: ReconnectingWireClient.Target], ownAddress: String = "", configuration: WireConfiguration, logger: Logger) {
        self.ownAddress = ownAddress
        (reconnections, reconnected) = AsyncStream<NodeID>.makeStream(bufferingPolicy: .bufferingNewest(64))
        (additions, added) = AsyncStream<Peer>.makeStream()
        self.configuration = configuration
        self.logger = logger
        peers = Mutex([:])
        for (id, target) in initial { add(id, target) }
    }

    public func send(_ message: Raft.Message) {
        let lane = RaftLane.of(message.body)
        _ = peers.withLock { $0[message.to]?.lanes[lane]?.queue.yield(message) }
    }

    /// Makes the dialled peers exactly `wanted`: new ones are dialled, those gone are let go, and
    /// one whose address changed is let go and dialled at the new address.
    public func setPeers(_ wanted: [NodeID: ReconnectingWireClient.Target]) {
        let current = peers.withLock { $0.mapValues(\.target) }
        guard current != wanted else { return }
        for (id, target) in current where wanted[id] != target { remove(id) }
        for (id, target) in wanted where current[id] != target { add(id, target) }
        logger.notice("raft peers", metadata: ["peers": "\(wanted.sorted { $0.key < $1.key }.map { "\($0.key)@\($0.value)" })"])
    }

    /// Keeps the connections up and drains the queues until cancelled. Every peer, the initial
    /// ones too, arrives through `additions`, so each is served exactly once.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await peer in additions { serve(peer, in: &group) }
        }
    }

    /// Whether both connections to a peer are up now, for status.
    public func isConnected(_ id: NodeID) async -> Bool {
        guard let peer = peers.withLock({ $0[id] }) else { return false }
        for lane in peer.lanes.values where await !lane.client.isConnected { return false }
        return true
    }

    /// Connections made to a peer on one lane since start (tests read it).
    func connectCount(to id: NodeID, lane: RaftLane) async -> Int {
        await peers.withLock({ $0[id] })?.lanes[lane]?.client.connectCount ?? 0
    }

    private func add(_ id: NodeID, _ target: ReconnectingWireClient.Target) {
        var lanes: [RaftLane: Lane] = [:]
        for kind in RaftLane.allCases {
            let (stream, queue) = AsyncStream<Raft.Message>.makeStream(bufferingPolicy: .bufferingNewest(4096))
            let announces = kind == .control
            let reconnected = self.reconnected
            let onConnected: @Sendable () -> Void = { if announces { reconnected.yield(id) } }
            let client = ReconnectingWireClient(
                target: target, configuration: configuration,
                // Redialling a peer is cheap and a returning peer may complete a quorum: a short
                // cap keeps the time from its restart to the next election small.
                backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(250)), logger: logger,
                onConnected: onConnected)
            lanes[kind] = Lane(queue: queue, stream: stream, client: client)
        }
        let (stopped, stop) = AsyncStream<Never>.makeStream()
        let peer = Peer(id: id, target: target, lanes: lanes, stop: stop, stopped: stopped)
        peers.withLock { $0[id] = peer }
        added.yield(peer)
    }

    private func remove(_ id: NodeID) {
        guard let peer = peers.withLock({ $0.removeValue(forKey: id) }) else { return }
        for lane in peer.lanes.values { lane.queue.finish() }
        peer.stop.finish()
    }

    /// One peer's connections, until it is let go (`stop` finishes; a peer let go before it was
    /// served ends at once) or the transport stops.
    private func serve(_ peer: Peer, in group: inout DiscardingTaskGroup) {
        let ownAddress = self.ownAddress
        group.addTask {
            try? await withThrowingDiscardingTaskGroup { connections in
                for lane in peer.lanes.values {
                    connections.addTask { await lane.client.run() }
                    connections.addTask {
                        for await message in lane.stream {
                            guard let connection = try? await lane.client.connection(within: .milliseconds(200)) else { continue }
                            var wire = RaftWireMapping.wire(message)
                            switch message.body {
                            case .heartbeat, .voteRequest: wire.senderAddress = ownAddress
                            default: break
                            }
                            connection.trySendOneWay(.raftMessage(wire))
                        }
                    }
                }
                connections.addTask {
                    for await _ in peer.stopped {}
                    throw CancellationError() // let go: ends this peer's other tasks
                }
            }
        }
    }
}
