import Raft

struct ClientRequest: CustomStringConvertible {
    enum Kind { case put(UInt64), get }
    var client: Int
    var opID: UInt64
    var key: UInt8
    var kind: Kind
    var description: String { "op \(opID) \(kind) key \(key)" }
}

struct ClientReply: CustomStringConvertible {
    enum Result {
        case ok(UInt64)
        case notLeader(hint: NodeID?)
        /// Definitely did not take effect: the put's entry was overwritten, or the read abandoned.
        case failed
    }
    var opID: UInt64
    var result: Result
    var description: String { "op \(opID) \(result)" }
}

/// A client issuing one operation at a time, following leader hints.
struct SimClient {
    let id: Int
    var guess: Int
    var current: (request: ClientRequest, call: Int)?
    init(id: Int, guess: Int) {
        self.id = id
        self.guess = guess
    }
}

extension Simulation {
    func startOperation(client c: Int) {
        guard clients[c].current == nil else { return }
        operations += 1
        let opID = UInt64(operations)
        let key = UInt8(random(0...params.keyCount - 1))
        let kind: ClientRequest.Kind = chance(0.5) ? .put(opID) : .get
        let request = ClientRequest(client: c, opID: opID, key: key, kind: kind)
        clients[c].current = (request, now)
        queue.push(.clientRequest(request, node: clients[c].guess), at: now + random(params.minDelay...params.maxDelay))
        queue.push(.clientTimeout(client: c, opID: opID), at: now + params.clientTimeout)
    }

    func serve(_ request: ClientRequest, at i: Int) {
        guard nodes[i].isUp else { return }
        do {
            switch request.kind {
            case .put(let value):
                let put = PutCommand(opID: request.opID, key: request.key, value: value)
                let (index, term) = try nodes[i].core!.propose(put.bytes)
                nodes[i].proposals[index] = (term, request.client, request.opID)
            case .get:
                nodes[i].reads[request.opID] = (request.client, request.key)
                try nodes[i].core!.readIndex(context: request.opID)
            }
        } catch RaftError.notLeader(let leader) {
            nodes[i].reads[request.opID] = nil
            reply(from: i, to: request.client, ClientReply(opID: request.opID, result: .notLeader(hint: leader)))
        } catch {
            nodes[i].reads[request.opID] = nil
            reply(from: i, to: request.client, ClientReply(opID: request.opID, result: .notLeader(hint: nil)))
        }
        drive(i)
    }

    func reply(from i: Int, to client: Int, _ reply: ClientReply) {
        queue.push(.clientReply(reply, client: client), at: now + random(params.minDelay...params.maxDelay))
    }

    func receive(_ reply: ClientReply, client c: Int) {
        guard let (request, call) = clients[c].current, request.opID == reply.opID else { return }
        switch reply.result {
        case .ok(let value):
            let kind: RegisterOperation.Kind
            if case .put(let v) = request.kind { kind = .put(v) } else { kind = .get(value) }
            history[Int(request.key), default: []].append(RegisterOperation(client: c, kind: kind, call: call, returned: now))
            finish(client: c, call: call, ok: true)
        case .notLeader(let hint):
            // The same operation, sent on to the leader we were told about (or anyone).
            let target = hint.map { Int($0) - 1 } ?? random(0...params.nodeCount - 1)
            clients[c].guess = target
            queue.push(.clientRequest(request, node: target), at: now + (hint == nil ? 10 : 1))
        case .failed:
            finish(client: c, call: call, ok: false)
        }
    }

    func timeout(client c: Int, opID: UInt64) {
        guard let (request, call) = clients[c].current, request.opID == opID else { return }
        if case .put(let v) = request.kind {
            // Unknown outcome: the write may take effect at any later time.
            history[Int(request.key), default: []].append(RegisterOperation(client: c, kind: .put(v), call: call, returned: nil))
        }
        clients[c].guess = random(0...params.nodeCount - 1)
        finish(client: c, call: call, ok: false)
    }

    func finish(client c: Int, call: Int, ok: Bool) {
        if keepTrace { trace.append("\(now)ms client \(c) op \(clients[c].current?.request.opID ?? 0) \(ok ? "done" : "FAILED") (called at \(call)ms)") }
        clients[c].current = nil
        if call >= params.healAt { healedOps.append((c, call, now, ok)) }
        queue.push(.clientNext(client: c), at: now + random(0...30))
    }

    func resolveProposal(_ i: Int, _ entry: Entry) {
        guard let proposal = nodes[i].proposals.removeValue(forKey: entry.index) else { return }
        let result: ClientReply.Result
        if proposal.term == entry.term {
            result = .ok(0)
        } else {
            result = .failed // another entry won this index: ours can never commit
        }
        reply(from: i, to: proposal.client, ClientReply(opID: proposal.opID, result: result))
    }

    func readIndexKnown(_ i: Int, _ state: ReadState) {
        guard let (client, key) = nodes[i].reads.removeValue(forKey: state.context) else { return }
        nodes[i].readsAwaitingApply.append((state.index, client, state.context, key))
    }

    func abandonRead(_ i: Int, _ context: UInt64) {
        guard let (client, _) = nodes[i].reads.removeValue(forKey: context) else { return }
        reply(from: i, to: client, ClientReply(opID: context, result: .failed))
    }

    func answerReadsAwaitingApply(_ i: Int) {
        let applied = nodes[i].stateMachine.applied
        var waiting: [(index: LogIndex, client: Int, opID: UInt64, key: UInt8)] = []
        for read in nodes[i].readsAwaitingApply {
            if read.index <= applied {
                let value = nodes[i].stateMachine.values[read.key] ?? 0
                reply(from: i, to: read.client, ClientReply(opID: read.opID, result: .ok(value)))
            } else {
                waiting.append(read)
            }
        }
        nodes[i].readsAwaitingApply = waiting
    }
}
