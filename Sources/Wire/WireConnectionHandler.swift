import Logging
import NIOCore
import NIOSSL

/// A call or stream the peer started, handed to the connection's serve loop.
struct InboundCall: Sendable {
    let callID: UInt64
    let body: Envelope.Body
    /// The peer's further items, for streams.
    let items: AsyncThrowingStream<Envelope.Body, any Error>?
}

/// All per-connection protocol state: the handshake, the call table, keepalive and write
/// back-pressure. Confined to the channel's event loop; `WireConnection` is its thread-safe face.
final class WireConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = Envelope
    typealias OutboundIn = Envelope
    typealias OutboundOut = Envelope

    enum Side { case client, server }

    private enum Phase {
        /// Server: sent Hello, waiting for the client's. Client: waiting for the server's Hello.
        case awaitingHello
        /// Client only: sent Hello with proof, waiting for HelloAck.
        case awaitingAck(serverNonce: [UInt8], clientNonce: [UInt8])
        case established
        /// An error was sent or the channel went inactive: input is ignored from now on.
        case closing
    }

    private enum OutboundCall {
        case unary(EventLoopPromise<Envelope.Body>, Scheduled<Void>?)
        case stream(AsyncThrowingStream<Envelope.Body, any Error>.Continuation)
    }

    private enum InboundCallState {
        case unary(cancelled: Bool)
        case stream(AsyncThrowingStream<Envelope.Body, any Error>.Continuation?)
    }

    let side: Side
    let configuration: WireConfiguration
    /// Serves the peer's calls and one-way messages; nil on a pure client connection.
    private let service: (any WireService)?
    private let logger: Logger
    private let established: EventLoopPromise<PeerIdentity>
    private let inboundCalls: AsyncStream<InboundCall>.Continuation

    private var context: ChannelHandlerContext?
    private var phase = Phase.awaitingHello
    private var ownNonce = HandshakeProof.makeNonce()
    private(set) var peer: PeerIdentity?
    private var remoteAddress = "unknown"

    private var lastIssuedCallID: UInt64
    private var highestPeerCallID: UInt64 = 0
    private var outbound: [UInt64: OutboundCall] = [:]
    private var inbound: [UInt64: InboundCallState] = [:]

    private var writeQueue = CircularBuffer<(Envelope, EventLoopPromise<Void>?)>()
    private var lastReceived = NIODeadline.now()
    private var handshakeTimer: Scheduled<Void>?
    private var keepaliveTimer: Scheduled<Void>?
    private var pingNonce: UInt64 = 0
    private var flushScheduled = false
    /// Between channelRead and channelReadComplete, writes wait for the flush at the end of the read.
    private var inRead = false
    /// Something was written during the current read and waits for its flush.
    private var wroteInRead = false

    /// Set for a connection the listener refuses at once (too many open): sent, then closed.
    private let refusal: WireError?

    init(
        side: Side,
        configuration: WireConfiguration,
        service: (any WireService)?,
        refusal: WireError? = nil,
        established: EventLoopPromise<PeerIdentity>,
        inboundCalls: AsyncStream<InboundCall>.Continuation,
        logger: Logger
    ) {
        self.side = side
        self.configuration = configuration
        self.service = service
        self.refusal = refusal
        self.established = established
        self.inboundCalls = inboundCalls
        self.logger = logger
        self.lastIssuedCallID = 0
    }

    /// The dialling side numbers its calls odd, the accepting side even, so both can start calls.
    private func isOwnCallID(_ id: UInt64) -> Bool {
        (id % 2 == 1) == (side == .client)
    }

    private func nextCallID() -> UInt64 {
        if lastIssuedCallID == 0 {
            lastIssuedCallID = side == .client ? 1 : 2
        } else {
            lastIssuedCallID += 2
        }
        return lastIssuedCallID
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard handshakeTimer == nil else { return }
        remoteAddress = context.channel.remoteAddress?.description ?? "unknown"
        lastReceived = .now()
        if let refusal {
            // Not logged per connection: a flood of them would flood the log (the listener counts them).
            shutDown(reason: refusal)
            context.writeAndFlush(wrapOutboundOut(Envelope(body: .error(refusal.body))))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        let loop = context.eventLoop.assumeIsolated()
        handshakeTimer = loop.scheduleTask(in: TimeAmount(configuration.handshakeTimeout)) { [self] in
            if case .established = phase { return }
            fail(.timeout, "handshake not completed within \(configuration.handshakeTimeout)")
        }
        if side == .server {
            let hello = Hello(
                protocolVersion: wireProtocolVersion, role: configuration.role, nodeID: configuration.nodeID,
                nonce: ownNonce, softwareVersion: configuration.softwareVersion)
            writeNow(Envelope(body: .hello(hello)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        shutDown(reason: WireError.closed())
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        shutDown(reason: WireError.closed())
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let frameError = error as? FrameError {
            fail(frameError.code, frameError.message)
        } else if case NIOSSLError.handshakeFailed = error, !"\(error)".contains("EOF during handshake") {
            // A peer without a certificate of the cluster's CA, an expired one, or plain TCP. Any
            // other TLS error (an unclean shutdown, an EOF mid-handshake: the peer died or gave
            // up) is a lost connection, below.
            if case .closing = phase { return }
            logger.warning("wire TLS handshake failed", metadata: ["peer": "\(remoteAddress)", "error": "\(error)"])
            shutDown(reason: WireError(.unauthenticated, "TLS handshake failed: \(error)"))
            context.close(promise: nil)
        } else {
            logger.debug("wire connection error", metadata: ["peer": "\(remoteAddress)", "error": "\(error)"])
            shutDown(reason: WireError(.unavailable, "connection error: \(error)"))
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The peer will send nothing more; whatever it left unfinished was reported by the decoder.
            if case .closing = phase { return }
            shutDown(reason: WireError.closed("the peer closed the connection"))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        drainWriteQueue()
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // Writes from elsewhere in the pipeline pass through untouched.
        context.write(data, promise: promise)
    }

    // MARK: Inbound frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        inRead = true
        lastReceived = .now()
        switch phase {
        case .closing:
            return
        case .awaitingHello:
            receiveHello(envelope)
        case .awaitingAck(let serverNonce, let clientNonce):
            receiveHelloAck(envelope, serverNonce: serverNonce, clientNonce: clientNonce)
        case .established:
            receive(envelope)
        }
    }

    private func receiveHello(_ envelope: Envelope) {
        guard case .hello(let hello)? = envelope.body else {
            if case .error(let error)? = envelope.body { return peerFailed(error, during: "the handshake") }
            return fail(.protocolViolation, "expected Hello as the first frame, got \(envelope.body?.name ?? "an empty envelope")")
        }
        guard hello.protocolVersion == wireProtocolVersion else {
            return fail(.versionMismatch, "this peer speaks wire protocol version \(wireProtocolVersion), the other side sent version \(hello.protocolVersion)")
        }
        switch side {
        case .client:
            if let refusal = certificateRefusal(claimed: hello.role, hello.nodeID, asServer: true) {
                return fail(.unauthenticated, refusal)
            }
            let proof = HandshakeProof.clientProof(
                secret: configuration.credential.key, serverNonce: hello.nonce, clientNonce: ownNonce,
                role: configuration.role, nodeID: configuration.nodeID)
            peer = PeerIdentity(role: hello.role, nodeID: hello.nodeID, address: remoteAddress, softwareVersion: hello.softwareVersion)
            phase = .awaitingAck(serverNonce: hello.nonce, clientNonce: ownNonce)
            writeNow(Envelope(body: .hello(Hello(
                protocolVersion: wireProtocolVersion, role: configuration.role, nodeID: configuration.nodeID,
                nonce: ownNonce, proof: proof, softwareVersion: configuration.softwareVersion))))
        case .server:
            guard let root = configuration.rootSecret else {
                return fail(.unauthenticated, "this \(configuration.role.name) holds no root secret and accepts no peers")
            }
            guard hello.role != .unspecified, Credential.isValidNodeID(hello.nodeID) else {
                return fail(.unauthenticated, "a Hello must name a role and a node id of 1 to \(Credential.maxNodeIDBytes) printable characters")
            }
            // The key of what the peer claims to be: only the root's holders and that credential's can prove it.
            let claimed = Credential.derive(root: root, role: hello.role, nodeID: hello.nodeID)
            guard hello.nonce.count == HandshakeProof.nonceBytes,
                  HandshakeProof.verifyClientProof(
                      hello.proof, secret: claimed.key, serverNonce: ownNonce,
                      clientNonce: hello.nonce, role: hello.role, nodeID: hello.nodeID)
            else {
                logger.warning(
                    "wire peer failed authentication",
                    metadata: ["peer": "\(remoteAddress)", "role": "\(hello.role.name)", "node": "\(hello.nodeID.prefix(64))"])
                return fail(.unauthenticated, "the Hello proof does not match the credential of \(hello.role.name) '\(hello.nodeID)' in this cluster")
            }
            if let refusal = certificateRefusal(claimed: hello.role, hello.nodeID, asServer: false) {
                logger.warning(
                    "wire peer's certificate does not name it",
                    metadata: ["peer": "\(remoteAddress)", "role": "\(hello.role.name)", "node": "\(hello.nodeID.prefix(64))"])
                return fail(.unauthenticated, refusal)
            }
            let identity = PeerIdentity(role: hello.role, nodeID: hello.nodeID, address: remoteAddress, softwareVersion: hello.softwareVersion)
            let proof = HandshakeProof.serverProof(secret: claimed.key, clientNonce: hello.nonce, serverNonce: ownNonce)
            writeNow(Envelope(body: .helloAck(HelloAck(proof: proof, nodeID: configuration.nodeID))))
            becomeEstablished(identity)
        }
    }

    /// With TLS, the peer's verified certificate must name the role and node id its Hello claims,
    /// and a server must be a scheduler (the only role that listens). Nil when it does.
    private func certificateRefusal(claimed role: Role, _ nodeID: String, asServer: Bool) -> String? {
        guard configuration.tls != nil else { return nil }
        guard let context else { return "the connection is gone" }
        guard let named = WireTLS.peerIdentities(context.pipeline.syncOperations) else {
            return "TLS is required and the peer presented no certificate"
        }
        let claimed = CertificateIdentity(role: role, nodeID: nodeID)
        if asServer, role != .scheduler {
            return "the server claims to be \(role.name) '\(nodeID)': only a scheduler listens on the wire"
        }
        guard named.contains(claimed) else {
            let names = named.isEmpty ? "no junction identity" : named.map(\.uri).joined(separator: ", ")
            return "the peer's TLS certificate names \(names), not \(claimed.uri) as its Hello claims"
        }
        return nil
    }

    private func receiveHelloAck(_ envelope: Envelope, serverNonce: [UInt8], clientNonce: [UInt8]) {
        switch envelope.body {
        case .helloAck(let ack)?:
            guard HandshakeProof.verifyServerProof(ack.proof, secret: configuration.credential.key, clientNonce: clientNonce, serverNonce: serverNonce) else {
                return fail(.unauthenticated, "the server's HelloAck proof does not match this side's credential: it does not hold this cluster's root secret")
            }
            becomeEstablished(peer ?? PeerIdentity(role: .unspecified, nodeID: ack.nodeID, address: remoteAddress, softwareVersion: ""))
        case .error(let error)?:
            peerFailed(error, during: "the handshake")
        default:
            fail(.protocolViolation, "expected HelloAck, got \(envelope.body?.name ?? "an empty envelope")")
        }
    }

    private func becomeEstablished(_ identity: PeerIdentity) {
        phase = .established
        peer = identity
        handshakeTimer?.cancel()
        handshakeTimer = nil
        scheduleKeepalive()
        established.succeed(identity)
    }

    private func receive(_ envelope: Envelope) {
        guard let body = envelope.body else {
            return fail(.unknownMessage, "an Envelope with no body this version knows (call id \(envelope.callID)); peer may be newer")
        }
        let id = envelope.callID
        switch body.kind {
        case .control:
            switch body {
            case .ping(let ping): writeNow(Envelope(callID: id, body: .pong(Pong(nonce: ping.nonce))))
            case .pong: break
            default: fail(.protocolViolation, "\(body.name) after the handshake")
            }
        case .error where id == 0:
            if case .error(let error) = body { peerFailed(error, during: "the connection") }
        case .oneWay where id == 0, .request where id == 0:
            guard let service, let peer else {
                return fail(.unimplemented, "this \(configuration.role) does not accept one-way \(body.name) messages")
            }
            if let refusal = service.receiveOneWay(body, from: peer) { fail(refusal.code, refusal.message) }
        case .oneWay:
            fail(.protocolViolation, "\(body.name) is one-way and must have call id 0, got \(id)")
        case .request, .streamOpen:
            startInbound(id: id, body: body)
        case .reply, .streamItem, .end, .cancel, .error:
            if id == 0 { return fail(.protocolViolation, "\(body.name) needs the call id it belongs to") }
            route(id: id, body: body)
        }
    }

    private func startInbound(id: UInt64, body: Envelope.Body) {
        guard !isOwnCallID(id) else {
            return fail(.protocolViolation, "call id \(id) has the parity of this side's calls; the peer must number its calls \(side == .client ? "even" : "odd")")
        }
        guard inbound[id] == nil, id > highestPeerCallID else {
            return fail(.protocolViolation, "call id \(id) was already used on this connection")
        }
        highestPeerCallID = id
        guard service != nil else {
            return writeNow(Envelope(callID: id, body: .error(ErrorMessage(code: .unimplemented, message: "this \(configuration.role) serves no \(body.name) calls"))))
        }
        if body.kind == .request, let service, let peer, let answer = service.answerOnLoop(body, from: peer) {
            let reply: Envelope.Body
            switch answer {
            case .success(let body) where body.kind == .reply: reply = body
            case .success(let other): reply = .error(WireError(.internal, "the service answered \(body.name) with \(other.name), which is not a reply").body)
            case .failure(let error): reply = .error(error.body)
            }
            // Inside channelRead: channelReadComplete flushes it with the other answers of this read.
            return enqueue(Envelope(callID: id, body: reply), promise: nil) { _ in }
        }
        guard inbound.count < configuration.maxConcurrentInboundCalls else {
            return writeNow(Envelope(callID: id, body: .error(ErrorMessage(
                code: .overloaded, message: "more than \(configuration.maxConcurrentInboundCalls) calls open on this connection", retryAfterMs: 100))))
        }
        var items: AsyncThrowingStream<Envelope.Body, any Error>?
        if body.kind == .streamOpen {
            let (stream, continuation) = AsyncThrowingStream<Envelope.Body, any Error>.makeStream(bufferingPolicy: .bufferingOldest(configuration.streamBufferLimit))
            items = stream
            inbound[id] = .stream(continuation)
        } else {
            inbound[id] = .unary(cancelled: false)
        }
        inboundCalls.yield(InboundCall(callID: id, body: body, items: items))
    }

    private func route(id: UInt64, body: Envelope.Body) {
        if let call = outbound[id] {
            switch (call, body.kind) {
            case (.unary(let promise, let timer), .reply), (.unary(let promise, let timer), .error):
                outbound[id] = nil
                timer?.cancel()
                if case .error(let error) = body { promise.fail(WireError(error)) } else { promise.succeed(body) }
            case (.stream(let continuation), .streamItem):
                if case .dropped = continuation.yield(body) {
                    outbound[id] = nil
                    continuation.finish(throwing: WireError(.overloaded, "stream consumer fell more than \(configuration.streamBufferLimit) items behind"))
                    writeNow(Envelope(callID: id, body: .cancel(Cancel(reason: "consumer too slow"))))
                }
            case (.stream(let continuation), .reply):
                outbound[id] = nil
                continuation.yield(body)
                continuation.finish()
            case (.stream(let continuation), .end):
                outbound[id] = nil
                continuation.finish()
            case (.stream(let continuation), .error):
                outbound[id] = nil
                if case .error(let error) = body { continuation.finish(throwing: WireError(error)) }
            default:
                fail(.protocolViolation, "\(body.name) does not belong to call \(id)")
            }
            return
        }
        if let state = inbound[id] {
            switch (state, body.kind) {
            case (.stream(let continuation?), .streamItem):
                if case .dropped = continuation.yield(body) {
                    let error = WireError(.overloaded, "the receiver fell more than \(configuration.streamBufferLimit) items behind on this stream")
                    continuation.finish(throwing: error)
                    inbound[id] = .stream(nil)
                    finishInbound(id: id, result: .failure(error))
                }
            case (.stream(let continuation), .end):
                continuation?.finish()
                inbound[id] = .stream(nil)
            case (.stream(let continuation), .cancel):
                continuation?.finish(throwing: WireError(.cancelled, "the peer cancelled the stream"))
                inbound[id] = nil
            case (.unary, .cancel):
                inbound[id] = .unary(cancelled: true)
            default:
                fail(.protocolViolation, "\(body.name) does not belong to call \(id)")
            }
            return
        }
        // A late answer to a call this side gave up on, or a late item after a stream ended, is
        // normal and dropped; a message for a call id nobody ever issued is a broken peer.
        if isOwnCallID(id) ? id <= lastIssuedCallID : id <= highestPeerCallID {
            logger.trace("dropped late message", metadata: ["call": "\(id)", "message": "\(body.name)"])
            return
        }
        fail(.unknownCall, "\(body.name) for call id \(id), which was never issued on this connection")
    }

    // MARK: Operations from WireConnection (on the event loop)

    func startCall(_ body: Envelope.Body, timeout: Duration, promise: EventLoopPromise<Envelope.Body>) {
        guard case .established = phase, let context else { return promise.fail(WireError.closed()) }
        let id = nextCallID()
        let sent = NIODeadline.now()
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [self] in
            guard case .unary(let pending, _)? = outbound.removeValue(forKey: id) else { return }
            let heard = lastReceived > sent
            pending.fail(
                WireError(
                    .timeout, "\(body.name) got no reply within \(timeout)" + (heard ? " (the peer is answering other frames)" : ""),
                    peerResponsive: heard))
            writeNow(Envelope(callID: id, body: .cancel(Cancel(reason: "timed out"))))
        }
        outbound[id] = .unary(promise, timer)
        enqueue(Envelope(callID: id, body: body), promise: nil) { [self] error in
            timer.cancel()
            if outbound.removeValue(forKey: id) != nil { promise.fail(error) }
        }
    }

    func openStream(_ body: Envelope.Body, promise: EventLoopPromise<(UInt64, AsyncThrowingStream<Envelope.Body, any Error>)>) {
        guard case .established = phase else { return promise.fail(WireError.closed()) }
        let id = nextCallID()
        let (stream, continuation) = AsyncThrowingStream<Envelope.Body, any Error>.makeStream(bufferingPolicy: .bufferingOldest(configuration.streamBufferLimit))
        outbound[id] = .stream(continuation)
        enqueue(Envelope(callID: id, body: body), promise: nil) { [self] error in
            outbound[id] = nil
            continuation.finish(throwing: error)
        }
        promise.succeed((id, stream))
    }

    /// Sends one item on an open stream, in either direction. Completes when the frame is written
    /// to the socket, so a sender feels the peer's pace.
    func sendStreamItem(id: UInt64, body: Envelope.Body, promise: EventLoopPromise<Void>) {
        let open: Bool
        switch (outbound[id], inbound[id]) {
        case (.stream?, _), (_, .stream?): open = true
        default: open = false
        }
        guard open, case .established = phase else {
            return promise.fail(WireError(.cancelled, "stream \(id) is no longer open"))
        }
        enqueue(Envelope(callID: id, body: body), promise: promise) { _ in }
    }

    /// Ends this side's part of a stream it opened (the peer may still answer), or cancels it.
    func endOutboundStream(id: UInt64, cancel reason: String?) {
        guard case .stream(let continuation)? = outbound[id] else { return }
        if let reason {
            outbound[id] = nil
            continuation.finish(throwing: WireError(.cancelled, reason))
            writeNow(Envelope(callID: id, body: .cancel(Cancel(reason: reason))))
        } else {
            enqueue(Envelope(callID: id, body: .end(End())), promise: nil) { _ in }
        }
    }

    /// Answers a call the peer started: a reply for a unary call; End or Error for a stream.
    func finishInbound(id: UInt64, result: Result<Envelope.Body?, WireError>) {
        guard let state = inbound.removeValue(forKey: id) else { return }
        if case .unary(cancelled: true) = state { return }
        if case .stream(let continuation?) = state { continuation.finish() }
        let body: Envelope.Body
        switch result {
        case .success(let reply?): body = reply
        case .success(nil): body = .end(End())
        case .failure(let error): body = .error(error.body)
        }
        enqueue(Envelope(callID: id, body: body), promise: nil) { _ in }
    }

    func sendOneWay(_ body: Envelope.Body, promise: EventLoopPromise<Void>?) {
        guard case .established = phase else {
            promise?.fail(WireError.closed())
            return
        }
        enqueue(Envelope(body: body), promise: promise) { _ in }
    }

    func close(reason: String) {
        guard let context else { return }
        if case .closing = phase { return }
        shutDown(reason: WireError.closed(reason))
        context.close(promise: nil)
    }

    // MARK: Writing

    /// Writes at once, bypassing the queue: handshake and control frames must not wait behind data.
    private func writeNow(_ envelope: Envelope) {
        guard let context else { return }
        if inRead {
            // Flushed after the read, like every other write made inside it (see channelReadComplete).
            context.write(wrapOutboundOut(envelope), promise: nil)
            wroteInRead = true
            return
        }
        context.writeAndFlush(wrapOutboundOut(envelope), promise: nil)
    }

    /// Writes now if the socket keeps up, else queues; refuses when the queue is full, so a slow
    /// peer costs bounded memory.
    private func enqueue(_ envelope: Envelope, promise: EventLoopPromise<Void>?, onRefused: (WireError) -> Void) {
        guard let context, phaseAllowsWrites else {
            let error = WireError.closed()
            promise?.fail(error)
            return onRefused(error)
        }
        if writeQueue.isEmpty && context.channel.isWritable {
            context.write(wrapOutboundOut(envelope), promise: promise)
            if inRead { wroteInRead = true }
            flushSoon()
        } else if writeQueue.count < configuration.maxQueuedWrites {
            writeQueue.append((envelope, promise))
        } else {
            let error = WireError(.overloaded, "the peer reads too slowly: \(writeQueue.count) messages already queued", retryAfterMs: 100)
            promise?.fail(error)
            onRefused(error)
        }
    }

    /// Many tasks answer calls on one connection; one flush per event-loop tick instead of one per
    /// message turns their frames into one writev. Inside channelRead, channelReadComplete flushes.
    private func flushSoon() {
        guard !flushScheduled, let context else { return }
        if inRead { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            self.context?.flush()
        }
    }

    /// The writes of a read leave together, but not from inside NIO's read: a flush that fails
    /// there (the peer reset the connection, as a killed process's kernel does) closes the
    /// channel in the middle of NIO's end-of-file handling, which then half-closes a channel
    /// already closed and trips NIO's registration assertion (seen: both gateways of a local
    /// cluster crashing when the leader was killed). One task at the end of the loop tick
    /// flushes instead.
    func channelReadComplete(context: ChannelHandlerContext) {
        inRead = false
        if wroteInRead {
            wroteInRead = false
            flushSoon()
        }
        context.fireChannelReadComplete()
    }

    private var phaseAllowsWrites: Bool {
        if case .established = phase { return true }
        return false
    }

    private func drainWriteQueue() {
        guard let context else { return }
        var wrote = false
        while context.channel.isWritable, let (envelope, promise) = writeQueue.popFirst() {
            context.write(wrapOutboundOut(envelope), promise: promise)
            wrote = true
        }
        if wrote { context.flush() }
    }

    // MARK: Keepalive

    private func scheduleKeepalive() {
        guard let context else { return }
        let interval = TimeAmount(configuration.keepaliveInterval)
        let due = NIODeadline.now() + interval
        keepaliveTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [self] in
            guard case .established = phase else { return }
            let now = NIODeadline.now()
            let silent = now - lastReceived
            // A timer that fires more than an interval late means this loop (or the whole
            // process) was stalled: the peer's frames may be sitting unread in the socket, so
            // the silence is ours, not the peer's. Ping and judge at the next tick instead.
            let stalledHere = now - due > interval
            if silent >= TimeAmount(configuration.idleTimeout), !stalledHere {
                return fail(.timeout, "nothing received for \(configuration.idleTimeout)")
            }
            if silent >= interval {
                pingNonce &+= 1
                writeNow(Envelope(body: .ping(Ping(nonce: pingNonce))))
            }
            scheduleKeepalive()
        }
    }

    // MARK: Failure and shutdown

    /// Tells the peer what was wrong with an Error frame, then closes the connection.
    private func fail(_ code: ErrorCode, _ message: String) {
        guard let context else { return }
        if case .closing = phase { return }
        logger.warning("closing wire connection", metadata: ["peer": "\(remoteAddress)", "code": "\(code)", "reason": "\(message)"])
        let error = WireError(code, message)
        shutDown(reason: error)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(Envelope(body: .error(error.body))), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func peerFailed(_ error: ErrorMessage, during what: String) {
        logger.warning("peer reported an error", metadata: ["peer": "\(remoteAddress)", "code": "\(error.code)", "reason": "\(error.message)"])
        shutDown(reason: WireError(error.code, "peer refused \(what): \(error.message)"))
        context?.close(promise: nil)
    }

    /// Fails everything still waiting on this connection. Idempotent.
    private func shutDown(reason: WireError) {
        if case .closing = phase, outbound.isEmpty, inbound.isEmpty, writeQueue.isEmpty { return }
        phase = .closing
        handshakeTimer?.cancel()
        keepaliveTimer?.cancel()
        established.fail(reason)
        for (_, call) in outbound {
            switch call {
            case .unary(let promise, let timer):
                timer?.cancel()
                promise.fail(reason)
            case .stream(let continuation):
                continuation.finish(throwing: reason)
            }
        }
        outbound.removeAll()
        for (_, state) in inbound {
            if case .stream(let continuation?) = state { continuation.finish(throwing: reason) }
        }
        inbound.removeAll()
        while let (_, promise) = writeQueue.popFirst() { promise?.fail(reason) }
        inboundCalls.finish()
    }
}
