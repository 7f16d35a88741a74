import Raft
import Wire

/// The wire face of a scheduler node: routes each call to the node.
struct SchedulerService: WireService {
    let node: SchedulerNode

    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body {
        if let refusal = permit(request, peer) ?? validate(request, peer) { throw refusal }
        switch request {
        case .scheduleRequest(let r): return try await node.schedule(r)
        case .finishRequest(let r): return await node.finish(r)
        case .registerInstance(let r): return try await node.register(r)
        case .deregisterInstance(let r): return try await node.deregister(r)
        case .statusRequest: return await node.status()
        case .budgetLeaseRequest(let r): return try await node.lease(r)
        case .tenantsRequest: return await node.tenants()
        case .setPolicyRequest(let r): return try await node.setPolicy(r)
        case .drainRequest(let r): return try await node.drain(r)
        case .membershipChangeRequest(let r): return try await node.changeMembership(r)
        default: throw WireError(.unimplemented, "\(request.name) is not served by a scheduler")
        }
    }

    func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws {
        if let refusal = permit(open, peer) ?? validate(open, peer) { throw refusal }
        switch open {
        case .openReportStream(let opened): try await serveReports(opened, stream: stream, from: peer)
        case .subscribeInstances:
            let (id, tables) = await node.subscribeInstances()
            await forward(tables, as: Envelope.Body.instanceTable, to: stream)
            await node.unsubscribe(id)
        case .subscribeCapacity(let subscribe):
            guard let (id, signals) = await node.subscribeCapacity(model: subscribe.model) else {
                try await stream.send(await node.notLeaderReply())
                return
            }
            await forward(signals, as: Envelope.Body.capacityAvailable, to: stream)
            await node.unsubscribe(id)
            // The node ends capacity streams when it stops leading; say where the leader went.
            if !Task.isCancelled { try? await stream.send(await node.notLeaderReply()) }
        default:
            throw WireError(.unimplemented, "\(open.name) streams are not served by a scheduler")
        }
    }

    /// Sends every item of `items` down `stream` until either ends (the subscriber leaves by
    /// cancelling or closing its connection; the node ends `items` when it stops serving them).
    private func forward<Item: Sendable>(
        _ items: AsyncStream<Item>, as body: @escaping @Sendable (Item) -> Envelope.Body, to stream: WireStream
    ) async {
        await withTaskGroup { group in
            group.addTask {
                for await item in items {
                    do { try await stream.send(body(item)) } catch { return }
                }
            }
            group.addTask {
                do { for try await _ in stream.inbound {} } catch {}
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func serveReports(_ opened: OpenReportStream, stream: WireStream, from peer: PeerIdentity) async throws {
        for try await item in stream.inbound {
            guard case .loadReport(var report) = item else {
                throw WireError(.protocolViolation, "a report stream carries LoadReport messages, not \(item.name)")
            }
            if let refusal = validate(item, peer) { throw refusal }
            if report.instanceID.isEmpty { report.instanceID = opened.instanceID }
            // The stream was opened for one instance (its agent's own): its reports are about it.
            guard report.instanceID == opened.instanceID else {
                node.metrics.refused(.notPermitted)
                throw WireError(.permissionDenied, "a report stream opened for '\(opened.instanceID)' carried a report for '\(report.instanceID)'")
            }
            guard try await node.report(report) else {
                try await stream.send(await node.notLeaderReply())
                return
            }
            // Each accepted report is acknowledged: an agent whose leader stops answering (a
            // frozen process keeps its TCP connections open) notices the silence and moves on.
            try await stream.send(.reportAck(ReportAck(sequence: report.sequence)))
        }
    }

    /// `schedule` and `finish` on the data path are answered where they are read: the server's
    /// connections run on the node's event loop (see `SchedulerNode.unownedExecutor`).
    func answerOnLoop(_ request: Envelope.Body, from peer: PeerIdentity) -> Result<Envelope.Body, WireError>? {
        guard node.loop.inEventLoop else { return nil }
        if let refusal = permit(request, peer) ?? validate(request, peer) { return .failure(refusal) }
        switch request {
        case .scheduleRequest(let schedule): return node.assumeIsolated { $0.scheduleNow(schedule) }
        case .finishRequest(let finish): return node.assumeIsolated { $0.finishNow(finish) } ? .success(.ack(Ack())) : nil
        case .budgetLeaseRequest(let lease): return node.assumeIsolated { $0.leaseNow(lease) }
        default: return nil
        }
    }

    /// One-way FinishRequests (a gateway need not wait for their Ack) and Raft's messages, taken
    /// in arrival order on the node's loop. A Raft message must come from a scheduler, name the
    /// node its connection authenticated as its sender, and pass `RaftMessageCheck`; otherwise
    /// it is refused, counted, and its connection closed, and the core never sees it.
    func receiveOneWay(_ message: Envelope.Body, from peer: PeerIdentity) -> WireError? {
        if let refusal = permit(message, peer) ?? validate(message, peer) { return refusal }
        if case .finishRequest(let finish) = message {
            onNode { _ = $0.finishNow(finish) }  // a follower drops it, as `finish` does
            return nil
        }
        guard case .raftMessage(let wire) = message else { return WireError(.unimplemented, "\(message.name) is not one-way here") }
        guard let sender = NodeID(peer.nodeID) else {
            return refuse(.wrongSender, WireError(.invalidArgument, "a scheduler's node id is a number, not '\(peer.nodeID)'"), peer)
        }
        let core: Raft.Message
        do { core = try RaftWireMapping.core(wire) } catch {
            return refuse(.invalidMessage, WireError(.invalidArgument, "a Raft message that does not map: \(error)"), peer)
        }
        if let problem = RaftMessageCheck.problem(core, sender: sender) {
            return refuse(core.from == sender ? .invalidMessage : .wrongSender, WireError(.invalidArgument, "Raft message refused: \(problem)"), peer)
        }
        let address = wire.senderAddress
        onNode { node in
            if !address.isEmpty { node.noteAddress(address, of: core.from) }
            node.onReplica { try? $0.receive(core) }
        }
        return nil
    }

    /// nil when `peer`'s role may send `body` (`CallPermission`); otherwise the refusal, logged and counted.
    private func permit(_ body: Envelope.Body, _ peer: PeerIdentity) -> WireError? {
        guard let why = CallPermission.refusal(body, from: peer) else { return nil }
        return refuse(.notPermitted, WireError(.permissionDenied, why), peer)
    }

    /// nil when `body` passes `RequestMessageCheck`; otherwise the refusal, logged and counted.
    private func validate(_ body: Envelope.Body, _ peer: PeerIdentity) -> WireError? {
        guard let problem = RequestMessageCheck.problem(body) else { return nil }
        return refuse(.invalidMessage, WireError(.invalidArgument, "\(body.name) refused: \(problem)"), peer)
    }

    /// Logs and counts a refused message: a call is answered with `error`, a one-way message or
    /// a stream's item closes its connection or stream with it.
    private func refuse(_ reason: SchedulerMetrics.Refusal, _ error: WireError, _ peer: PeerIdentity) -> WireError {
        node.metrics.refused(reason)
        node.logger.warning("refused a peer's message", metadata: ["peer": "\(peer)", "reason": "\(reason.rawValue)", "error": "\(error.message)"])
        return error
    }

    /// Runs `work` on the node at once when called on its loop (always, for the node's own
    /// server); from anywhere else it is queued onto that loop, keeping the order.
    private func onNode(_ work: @escaping @Sendable (isolated SchedulerNode) -> Void) {
        let node = self.node
        if node.loop.inEventLoop {
            node.assumeIsolated(work)
        } else {
            node.loop.execute { node.assumeIsolated(work) }
        }
    }
}
