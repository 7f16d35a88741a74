import FlowControl
import Foundation
import GatewayCore
import Logging
import NIOCore
import NIOHTTP1
import Tracing
import Wire

/// The shell of one client request: feeds its `RequestLifecycle` the events of the scheduler
/// link, the wait queue, the timer and its engine legs, and carries out the directives it
/// returns. Lives on the event loop of its client's connection, from the first byte read to the
/// last byte written: the scheduler call, the engine connections and the timer are all on it.
final class RequestRun {
    private let context: LoopContext
    private var shared: GatewayShared { context.shared }
    private let sink: any ClientSink
    private var lifecycle: RequestLifecycle
    let features: RequestFeatures
    private let uri: String
    private let clientHeaders: HTTPHeaders
    private let body: ByteBuffer
    let requestID: String
    /// The label of `junction_gateway_requests_total` (a known route, or `other`).
    private let pathLabel: String
    /// The client its API key named (nil when the gateway has no keys).
    private let client: String?
    private let started = ContinuousClock.now

    private var pending: [LifecycleEvent] = []
    private var draining = false
    private var legs: [Leg: UpstreamLeg] = [:]
    private var heads: [Leg: HTTPResponseHead] = [:]
    private var collected: [Leg: ByteBuffer] = [:]
    /// An event stream's chunks that came before the lifecycle let the stream start.
    private var held: [ByteBuffer] = []
    private var streaming = false
    /// `streamComplete` was fed (once: the tail still ends with `[DONE]` on an empty chunk).
    private var streamCompleteSeen = false
    /// The answer leg's body is an event stream to relay chunk by chunk (set by its head).
    private var relaysChunks = false
    /// Reading from the engine is paused because the client does not take the stream.
    private var clientPaused = false
    private var timer: Scheduled<Void>?
    /// Flow control's view of the request: its tenant, class and estimated tokens.
    private var ticket: FlowTicket
    /// The queue woke it for the ask under way (if it is sent, there was room for the next).
    private var woken = false
    /// `x-junction-priority` named no class: answered 400 at the start.
    private var priorityError: OpenAIError?
    /// The body could not be given its class's engine priority: answered 400 at the start.
    private var bodyError: OpenAIError?
    private var meter: StreamMeter
    private var answeredStatus = 0
    private var answeredBy: String?
    private var relayedAnswer = false
    /// SGLang's body for both legs of one attempt; vLLM's hand-off id for both legs.
    private var pairBody: (attempt: Int, body: ByteBuffer)?
    private var handoffID: (attempt: Int, id: String)?
    /// The prefill side of the latest assignment (SGLang's bootstrap address comes from it).
    private var assignedPrefill: PrefillTarget?
    private static let collectLimit = 64 << 20
    /// The relayed answer's usage, parsed once when the answer is over (the slot's Finish and the
    /// metrics both read it).
    private lazy var answerUsage: StreamMeter.Usage? = meter.usage
    /// The request's spans, when the gateway traces (the config's `tracing` section).
    private let tracing: RequestTracing?

    init(
        context: LoopContext, sink: any ClientSink, uri: String, headers: HTTPHeaders, body: ByteBuffer, features: RequestFeatures,
        pathLabel: String, client: String?
    ) {
        self.context = context
        self.sink = sink
        self.uri = uri
        clientHeaders = headers
        self.features = features
        self.pathLabel = pathLabel
        self.client = client
        requestID = context.shared.nextRequestID()
        let flow = context.shared.config.flow
        let tenant = flow.tenant(named: client)
        var rank = flow.tenants[tenant].classRank
        if let asked = headers.first(name: "x-junction-priority") {
            // A request may lower its class, never raise it.
            if let named = flow.classRank(named: asked.trimmingCharacters(in: .whitespaces)) {
                rank = max(rank, named)
            } else {
                priorityError = .invalidRequest(
                    "x-junction-priority: no priority class '\(Self.loggable(asked))'; the classes are \(flow.classes.map(\.name).joined(separator: ", ")).")
            }
        }
        // Every leg of every attempt carries the class's engine priority, the client's replaced;
        // a body that cannot carry it is refused rather than sent with the client's own.
        if let priority = flow.enginePriority(ofClass: rank) {
            if let marked = EnginePriorityBody.apply(Array(buffer: body), priority: priority) {
                self.body = ByteBuffer(bytes: marked)
            } else {
                self.body = body
                bodyError = .invalidRequest(
                    "The request body names 'priority' and holds a number that cannot be written again (out of range); the gateway sets 'priority' itself.")
            }
        } else {
            self.body = body
        }
        ticket = FlowTicket(
            id: context.shared.nextTicketID(), tenant: tenant, classRank: rank,
            estimatedTokens: features.promptTokens + (features.maxTokens ?? flow.assumedCompletionTokens), pool: features.model)
        lifecycle = RequestLifecycle(
            request: LifecycleRequest(features, queueTimeout: flow.classes[rank].ttl), configuration: context.shared.lifecycle)
        meter = StreamMeter(started: started)
        let requestID = self.requestID
        tracing = context.shared.tracer.map { tracer in
            var attributes = SpanAttributes()
            attributes["http.request.method"] = "POST"
            attributes["http.route"] = pathLabel
            attributes["url.path"] = uri
            attributes["gen_ai.request.model"] = features.model
            if let maxTokens = features.maxTokens { attributes["gen_ai.request.max_tokens"] = maxTokens }
            attributes["junction.stream"] = features.stream
            attributes["junction.prompt_tokens_estimate"] = features.promptTokens
            attributes["junction.request_id"] = requestID
            attributes["junction.gateway"] = context.shared.name
            if let client { attributes["junction.client"] = client }
            return RequestTracing(
                tracer: tracer, clientHeaders: headers, name: pathLabel == "/v1/ws" ? "WS \(uri)" : "POST \(pathLabel)",
                attributes: attributes, now: context.shared.now)
        }
    }

    func start() {
        shared.metrics.requestStarted()
        _ = shared.inFlight.wrappingAdd(1, ordering: .relaxed)
        if let refusal = priorityError ?? bodyError { return feed(.refused(refusal)) }
        arrive()
    }

    /// Times this request had its tenant's lease asked for.
    private var leaseAsks = 0
    /// A request asks for its tenant's lease at most this often: twice, since a request of the
    /// same tenant arriving as the first answer comes may take the slot that answer granted.
    private static let maxLeaseAsks = 2

    /// Flow control's admission. After its asks for its tenant's lease (the leader answered or
    /// did not), this gateway decides.
    private func arrive() {
        let mayAsk = leaseAsks < Self.maxLeaseAsks
        switch shared.flow.arrive(&ticket, mayAsk: mayAsk, on: context.loop, wake: wakeHandler) {
        case .askLeader:
            leaseAsks += 1
            guard let leases = shared.leases else { return arrive() }
            let me = NIOLoopBound(self, eventLoop: context.loop)
            let loop = context.loop
            leases.need(tenant: ticket.tenant, estimatedTokens: ticket.estimatedTokens) {
                loop.execute {
                    // The client may have gone meanwhile: its lifecycle ended, nothing was charged.
                    guard !me.value.lifecycle.isDone else { return }
                    me.value.arrive()
                }
            }
        case .proceed: feed(.start)
        case .queued: feed(.startQueued)
        case .refused(let refusal, let wait):
            let seconds = max(1, Int((wait / .seconds(1)).rounded(.up)))
            feed(.refused(.limitReached(tenant: shared.flow.tenantName(ticket), kind: refusal.kind, limit: refusal.limit, retryAfterSeconds: seconds)))
        case .shed:
            shared.metrics.rejectedQueueFull()
            feed(.refused(.queueFull(size: shared.config.maxQueueSize)))
        }
    }

    /// How the queue wakes this request, on its loop.
    private var wakeHandler: @Sendable (FlowGate.Wake) -> Void {
        let me = NIOLoopBound(self, eventLoop: context.loop)
        return { wake in me.value.woken(wake) }
    }

    private func woken(_ wake: FlowGate.Wake) {
        switch wake {
        case .turn:
            woken = true
            feed(.turn)
        case .shed:
            feed(.shed)
        }
    }

    /// Feeds an event; events that directives cause while this one is handled queue behind it.
    func feed(_ event: LifecycleEvent) {
        pending.append(event)
        guard !draining else { return }
        draining = true
        while !pending.isEmpty {
            let next = pending.removeFirst()
            let now = shared.now
            let directives = lifecycle.handle(next, now: now)
            tracing?.observe(next, answered: directives, now: now)
            for directive in directives { execute(directive) }
        }
        draining = false
    }

    // MARK: - The client side

    func clientGone() { feed(.clientGone) }

    /// The client takes bytes again: read on from the engine.
    func clientWritable() {
        guard streaming, sink.isWritable else { return }
        if clientPaused {
            clientPaused = false
            feed(.clientBackPressure(paused: false))
        }
        legs[.answer]?.resume()
    }

    // MARK: - Engine legs (called by UpstreamLeg)

    func legConnected(_ leg: Leg) { feed(.connected(leg)) }

    func legHead(_ leg: Leg, _ head: HTTPResponseHead) {
        heads[leg] = head
        let eventStream = Self.isEventStream(head)
        // Decided once per answer, not per chunk: the same rule as the lifecycle's.
        if leg == .answer { relaysChunks = eventStream && head.status.code < 400 }
        feed(.head(leg, status: Int(head.status.code), eventStream: eventStream))
    }

    func legBody(_ leg: Leg, _ buffer: ByteBuffer) {
        if leg == .answer, relaysChunks {
            if streaming {
                meter.saw(buffer)
                sink.streamChunk(buffer)
            } else {
                held.append(buffer)
            }
            feed(.bytes(leg))
            noteStreamComplete()
            return
        }
        var whole = collected[leg] ?? ByteBuffer()
        guard whole.readableBytes + buffer.readableBytes <= Self.collectLimit else {
            return feed(.failed(leg, .cut("the answer is larger than \(Self.collectLimit) bytes")))
        }
        if whole.readableBytes == 0 { whole = buffer } else { whole.writeImmutableBuffer(buffer) }
        collected[leg] = whole
    }

    /// Tells the lifecycle once the client has been handed the stream's terminal event.
    private func noteStreamComplete() {
        guard streaming, !streamCompleteSeen, meter.endsWithTerminalEvent else { return }
        streamCompleteSeen = true
        feed(.streamComplete)
    }

    func legEnded(_ leg: Leg) {
        legs[leg] = nil
        feed(.ended(leg))
    }

    func legFailed(_ leg: Leg, _ failure: UpstreamFailure) {
        legs[leg] = nil
        feed(.failed(leg, failure))
    }

    func legWantsMore(_ leg: Leg) -> Bool {
        if streaming, leg == .answer {
            sink.flush()
            if sink.isWritable { return true }
            if !clientPaused {
                clientPaused = true
                feed(.clientBackPressure(paused: true))
            }
            return false
        }
        return true
    }

    // MARK: - Directives

    private func execute(_ directive: LifecycleDirective) {
        switch directive {
        case .askScheduler(let exclude): askScheduler(exclude)
        case .pickFallback(let exclude):
            let (choice, knowsModel) = shared.fallbackChoice(model: features.model, excluding: exclude)
            feed(.fallbackPicked(choice, tableKnowsModel: knowsModel))
        case .joinQueue:
            // A new stay in the queue (a retry told to wait starts one): its place and age count from now.
            ticket.enqueued = nil
            woken = false
            feed(.queueJoined(admitted: shared.flow.wait(&ticket, on: context.loop, wake: wakeHandler)))
        case .leaveQueue:
            shared.flow.leave(ticket)
        case .waitForTurn:
            woken = false
            if !shared.flow.wait(&ticket, on: context.loop, wake: wakeHandler) { feed(.shed) }
        case .setTimer(let at):
            timer?.cancel()
            let delay = max(.zero, at - shared.now)
            timer = context.loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay / .nanoseconds(1)))) { [weak self] in
                self?.feed(.timer)
            }
        case .connect(let leg, let instance, let legBody, let attempt): connect(leg, instance, legBody, attempt)
        case .cancel(let leg):
            legs.removeValue(forKey: leg)?.cancel()
            if leg == .answer { held.removeAll() }
        case .respond(let leg, let source):
            let head = heads[leg]
            let answer = collected[leg] ?? ByteBuffer()
            meter.saw(answer)
            answeredStatus = Int(head?.status.code ?? 502)
            answeredBy = source.instanceID
            relayedAnswer = true
            sink.respond(status: head?.status ?? .badGateway, headers: answerHeaders(head, source), body: answer)
        case .startStream(let leg, let source):
            let head = heads[leg]
            answeredStatus = Int(head?.status.code ?? 200)
            answeredBy = source.instanceID
            relayedAnswer = true
            streaming = true
            sink.startStream(status: head?.status ?? .ok, headers: answerHeaders(head, source))
            for chunk in held {
                meter.saw(chunk)
                sink.streamChunk(chunk)
            }
            held.removeAll()
            sink.flush()
            noteStreamComplete()
        case .endStream:
            streaming = false
            sink.endStream(error: nil)
        case .endStreamWithError(let error):
            shared.logger.warning("engine failed mid-answer", metadata: ["instance": "\(answeredBy ?? "")", "error": "\(error.message)"])
            streaming = false
            sink.endStream(error: error)
        case .answerError(let error):
            answeredStatus = error.status
            switch error.code {
            case "request_shed", "queue_full": tenantOutcome("shed")
            case "schedule_timeout": tenantOutcome("expired")
            default: break
            }
            sink.answerError(error)
        case .release(let slot, let outcome, let withUsage): release(slot, outcome, withUsage)
        case .markFailed(let id): shared.failed(id)
        case .markSucceeded(let id): shared.succeeded(id)
        case .count(let count): self.count(count)
        case .done: done()
        }
    }

    /// The request's session: an `x-session-id` header, else the body's `user` field.
    private var sessionKey: String? {
        clientHeaders.first(name: "x-session-id").flatMap(RequestFeatures.sessionKey) ?? features.sessionKey
    }

    private func askScheduler(_ exclude: [String]) {
        var request = ScheduleRequest(
            requestID: requestID, model: features.model, prefixHashes: features.prefixHashes,
            promptTokens: UInt32(clamping: features.promptTokens), maxTokens: UInt32(clamping: features.maxTokens ?? 0),
            excludeInstances: exclude, sessionKey: sessionKey ?? "", answerStartChunk: UInt32(clamping: features.lastAnswerChunks?.lowerBound ?? 0),
            answerEndChunk: UInt32(clamping: features.lastAnswerChunks?.upperBound ?? 0), traceparent: tracing?.scheduleTraceparent() ?? "",
            acceptsHold: true,
            // Its own class's headroom, aged or not: aging moves a request up the queue's order,
            // never past the room its class may take from the classes above it.
            headroom: shared.flow.configuration.classes[ticket.classRank].headroom.map {
                EngineHeadroom(
                    maxWaiting: UInt32(clamping: $0.maxWaiting), maxKvUsage: $0.maxKVUsage, maxRunning: UInt32(clamping: $0.maxRunning),
                    maxPrefillMs: UInt32(clamping: $0.maxPrefillMilliseconds))
            })
        // A conversation's next turn goes where its last one went when the leader granted it,
        // without waiting for the leader; the leader hears of it. A retry (something excluded) asks.
        // An instance that just failed here (its cool-off) is asked about instead.
        if exclude.isEmpty, let instance = shared.link.takeGrant(features), !shared.isCoolingOff(instance.id) {
            request.reusedInstanceID = instance.id
            shared.link.reused(request, promptKey: features.promptKey, on: context.loop)
            return feed(.scheduler(.reused(instance)))
        }
        shared.link.schedule(request, model: features.model, promptKey: features.promptKey, on: context.loop).assumeIsolated().whenSuccess { [self] answer in
            if lifecycle.isDone {
                // The request ended while the scheduler decided: give back what it counted.
                if case .assigned(let instance, let prefill) = answer {
                    sendFinish(Slot(attempt: -1, leg: .answer, instanceID: instance.id), .clientCancelled, usage: nil)
                    if let prefill { sendFinish(Slot(attempt: -1, leg: .prefill, instanceID: prefill.id), .clientCancelled, usage: nil) }
                }
                return
            }
            if case .assigned(_, let prefill) = answer { assignedPrefill = prefill }
            if case .hold = answer, woken {
                shared.flow.held(ticket)
                woken = false
            }
            if case .noInstance(let why) = answer, shared.tableKnows(model: features.model) { return feed(.scheduler(.noneUp(why))) }
            feed(.scheduler(answer))
        }
    }

    private func connect(_ leg: Leg, _ instance: InstanceRef, _ legBody: LegBody, _ attempt: Int) {
        guard let address = EngineAddress(url: instance.endpointURL) else {
            return feed(.failed(leg, .unreachable("the endpoint URL '\(instance.endpointURL)' is not http://host:port")))
        }
        var headers = Self.forwardedHeaders(clientHeaders, dropAuthorization: !shared.config.clientKeys.isEmpty)
        headers.replaceOrAdd(name: "Host", value: address.authority)
        tracing?.inject(into: &headers, leg: leg, attempt: attempt)
        let sent: ByteBuffer
        do {
            switch legBody {
            case .client:
                sent = body
            case .vllmPrefill:
                sent = ByteBuffer(bytes: try HandoffBodies.vllmPrefill(Array(buffer: body)))
            case .vllmDecode:
                if let answer = collected[.prefill], let params = HandoffBodies.kvTransferParams(fromAnswer: Array(buffer: answer)) {
                    sent = ByteBuffer(bytes: try HandoffBodies.vllmDecode(Array(buffer: body), kvTransferParams: params))
                } else {
                    shared.logger.warning(
                        "the prefill instance answered without kv_transfer_params: the decode instance computes the prompt")
                    sent = body
                }
                collected[.prefill] = nil
            case .sglangPair:
                if let pair = pairBody, pair.attempt == attempt {
                    sent = pair.body
                } else {
                    // Both legs carry the prefill server's bootstrap address and one room.
                    let prefill = assignedPrefill
                    let made = ByteBuffer(
                        bytes: try HandoffBodies.sglang(
                            Array(buffer: body), host: prefill?.host ?? address.host, port: prefill?.bootstrapPort ?? 8998,
                            room: HandoffBodies.randomRoom()))
                    pairBody = (attempt, made)
                    sent = made
                }
            }
        } catch {
            return feed(.failed(leg, .cut("\(error)")))
        }
        if legBody == .vllmPrefill || legBody == .vllmDecode {
            // One fresh id per hand-off, on both legs, as vLLM's own proxies send it: the prefill
            // instance keeps the prompt's blocks under it until the decode instance reads them.
            if handoffID?.attempt != attempt { handoffID = (attempt, UUID().uuidString.lowercased()) }
            headers.replaceOrAdd(name: "X-Request-Id", value: handoffID!.id)
        }
        headers.replaceOrAdd(name: "Content-Length", value: String(sent.readableBytes))
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: address.basePath + uri, headers: headers)
        collected[leg] = nil
        heads[leg] = nil
        if leg == .answer { relaysChunks = false }
        let upstream = UpstreamLeg(leg: leg, pool: context.pool, address: address, head: head, body: sent, owner: self)
        legs[leg] = upstream
        upstream.start()
    }

    private func release(_ slot: Slot, _ outcome: SlotOutcome, _ withUsage: Bool) {
        sendFinish(slot, outcome, usage: withUsage ? answerUsage : nil)
    }

    private func sendFinish(_ slot: Slot, _ outcome: SlotOutcome, usage: StreamMeter.Usage?) {
        let total = ContinuousClock.now - started
        let wire: FinishOutcome =
            switch outcome {
            case .ok: .ok
            case .clientError: .clientError
            case .engineError: .engineError
            case .clientCancelled: .clientCancelled
            case .unspecified: .unspecified
            }
        shared.link.finish(
            FinishRequest(
                requestID: requestID, instanceID: slot.instanceID, outcome: wire, promptTokens: UInt32(clamping: usage?.prompt ?? 0),
                completionTokens: UInt32(clamping: usage?.completion ?? 0), cachedTokens: UInt32(clamping: usage?.cached ?? 0),
                ttftMs: UInt32(clamping: usage == nil ? 0 : meter.firstByte.map { Int($0 / .milliseconds(1)) } ?? 0),
                totalMs: UInt32(clamping: Int(total / .milliseconds(1))), prefillInstanceID: slot.prefillInstanceID),
            on: context.loop)
    }

    private func count(_ count: LifecycleCount) {
        let metrics = shared.metrics
        switch count {
        case .routed(let route, let after):
            metrics.scheduled(in: after, route: route.rawValue)
            shared.flow.served(&ticket, wasWoken: woken)
            woken = false
        case .retried: metrics.retried()
        case .gaveUp: metrics.upstreamGaveUp()
        case .upstreamError(let id): metrics.upstreamError(id)
        case .clientCancelled: metrics.clientCancelled()
        case .queueRejected: metrics.rejectedQueueFull()
        case .handoff(let flow, let outcome): metrics.handoff(flow: flow.rawValue, outcome: outcome)
        }
    }

    private func done() {
        timer?.cancel()
        timer = nil
        let usage = relayedAnswer ? answerUsage : nil
        shared.flow.finished(ticket, usedTokens: usage.map { $0.prompt + $0.completion })
        if let usage { shared.metrics.tenantTokens(tenant: shared.flow.tenantName(ticket), prompt: usage.prompt, completion: usage.completion) }
        for (_, leg) in legs { leg.cancel() }
        legs.removeAll()
        if relayedAnswer { shared.metrics.completed(status: answeredStatus, meter: meter, usage: answerUsage, streamed: relaysChunks) }
        let status = answeredStatus == 0 ? 499 : answeredStatus
        shared.metrics.answered(path: pathLabel, status: status, instance: answeredBy)
        if let client { shared.metrics.answered(client: client, status: status, usage: relayedAnswer ? answerUsage : nil) }
        if shared.config.accessLog { logAccess(status: status) }
        shared.metrics.requestEnded()
        _ = shared.inFlight.wrappingSubtract(1, ordering: .relaxed)
        sink.requestEnded(self)
    }

    /// One line per answered request, for the operator reading who sent what where.
    private func logAccess(status: Int) {
        var metadata: Logger.Metadata = [
            "request_id": "\(requestID)", "client": "\(client ?? "-")", "path": "\(pathLabel)", "model": "\(Self.loggable(features.model))",
            "status": "\(status)", "instance": "\(answeredBy ?? "-")", "stream": "\(features.stream)",
            "duration_ms": "\(Self.milliseconds(ContinuousClock.now - started))",
        ]
        if relayedAnswer, let first = meter.firstByte { metadata["ttft_ms"] = "\(Self.milliseconds(first))" }
        if relayedAnswer, let usage = answerUsage {
            metadata["prompt_tokens"] = "\(usage.prompt)"
            metadata["completion_tokens"] = "\(usage.completion)"
        }
        shared.accessLogger.info("request", metadata: metadata)
    }

    private static func milliseconds(_ duration: Duration) -> String { String(format: "%.1f", duration / .milliseconds(1)) }

    /// A client's text in a log line: at most 128 bytes, and no byte that could end the line or
    /// split the field (a model name is the client's to choose).
    static func loggable(_ text: String) -> String {
        var out = ""
        for byte in text.utf8.prefix(128) {
            if byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "%") { out.unicodeScalars.append(Unicode.Scalar(byte)) }
            else { out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true) }
        }
        return out
    }

    private func tenantOutcome(_ outcome: String) {
        shared.metrics.tenantRequest(tenant: shared.flow.tenantName(ticket), class: shared.flow.className(ticket.classRank), outcome: outcome)
    }

    // MARK: - Headers

    /// Headers that belong to one connection, not to the request (RFC 9110 §7.6.1), plus the
    /// framing the gateway sets itself.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    static func forwardedHeaders(_ headers: HTTPHeaders, dropAuthorization: Bool) -> HTTPHeaders {
        var out = HTTPHeaders()
        for (name, value) in headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || (dropAuthorization && lower == "authorization") { continue }
            out.add(name: name, value: value)
        }
        return out
    }

    static func isEventStream(_ head: HTTPResponseHead) -> Bool {
        head.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? false
    }

    /// The engine's headers worth passing on, and which instance answered by which route.
    private func answerHeaders(_ head: HTTPResponseHead?, _ source: AnswerSource) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for (name, value) in head?.headers ?? [:] where !Self.hopByHop.contains(name.lowercased()) { headers.add(name: name, value: value) }
        headers.add(name: "X-Junction-Instance", value: source.instanceID)
        headers.add(name: "X-Junction-Route", value: source.route.rawValue)
        if let prefill = source.prefillInstanceID { headers.add(name: "X-Junction-Prefill-Instance", value: prefill) }
        headers.add(name: "X-Junction-Gateway", value: shared.name)
        return headers
    }
}
