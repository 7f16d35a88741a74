/// One client request's decisions, from its first scheduler call to its last byte: schedule,
/// wait in the queue, fall back, connect, retry elsewhere, hand off (pd-split, both engine
/// families' flows), relay, time out, and release every scheduler slot it took exactly once with
/// an outcome. Pure: the shell feeds it `LifecycleEvent`s with the time and carries out the
/// `LifecycleDirective`s it returns (the shape of swift-cluster-membership's `SWIM.Instance`).
/// HTTP and WebSocket shells drive the same machine.
///
/// Rules it keeps on every path (the property test checks them over random event sequences):
/// - a slot taken (a scheduled assignment's answer and prefill sides) is released exactly once;
/// - nothing is retried, re-sent or answered again once a byte reached the client;
/// - the client gets one answer (or one stream, ended cleanly or by one error event);
/// - an admitted place in the wait queue is given back once; `done` comes once, and last.
public struct RequestLifecycle: Sendable {
    public let configuration: LifecycleConfiguration
    public let request: LifecycleRequest

    private var phase = Phase.new
    private var started: Moment = .zero
    /// When the current routing decision was first asked for (the decision-time metric).
    private var askedAt: Moment = .zero
    private var excluded: [String] = []
    private var attemptNumber = -1
    private var attempt: Attempt?
    /// Slots taken and not yet released.
    private var held: [Slot] = []
    private var inQueue = false
    private var queueDeadline: Moment?
    private var nextTry: Moment = .zero
    /// When the leader began holding the request (its first hold since another answer): holds
    /// are bounded from here, not from its arrival, which for a request that waited in the queue
    /// may be long before.
    private var holdingSince: Moment?
    /// The leader's answers that came late in a row (`ScheduleAnswer.late`).
    private var lateInARow = 0
    /// The timer the shell has been asked for, if it has not fired yet.
    private var armed: Moment?
    private var lastProblem = "no instance was tried"
    /// The client holds the relayed stream back (back-pressure): the idle timeout does not run.
    private var clientPaused = false

    private enum Phase: Equatable {
        case new
        case scheduling
        case pickingFallback
        case joiningQueue
        case queued
        /// Held by the leader (`ScheduleAnswer.hold`): asks again at `nextTry`.
        case holding
        case attempting
        /// Bytes reached the client: no retry, no second answer.
        case relaying
        case done
    }

    /// Where one leg's engine request stands.
    private enum Stage: Equatable {
        case connecting(since: Moment)
        case awaitingHead(sent: Moment)
        /// An event stream's head came; its first chunk has not.
        case awaitingFirstChunk(sent: Moment, status: Int)
        /// An unstreamed answer (or a refusal's body) is being read whole.
        case collecting(sent: Moment, status: Int)
        /// The answer is ready to go to the client (SGLang's pair may hold it for the prefill leg).
        case ready(sent: Moment, status: Int, streamed: Bool, ended: Bool)
        case relaying(sent: Moment, status: Int, lastByte: Moment)
    }

    private struct Attempt: Equatable {
        var number: Int
        var route: Route
        var answer: InstanceRef
        var prefill: PrefillTarget?
        var answerStage: Stage?
        var prefillStage: Stage?
        var prefillDone = false
        /// SGLang: the decode leg failed while the prefill leg still ran.
        var answerFailure: UpstreamFailure?
        /// SGLang: until when one leg's outcome waits for the other's.
        var patienceUntil: Moment?
        /// The relayed stream's terminal event reached the client (`streamComplete`).
        var answerComplete = false
    }

    public init(request: LifecycleRequest, configuration: LifecycleConfiguration) {
        self.request = request
        self.configuration = configuration
    }

    public var isDone: Bool { phase == .done }

    /// Longer than any hold the leader may give (`prefix_hold_ms` is at most 10 s).
    static let longestHold: Duration = .seconds(15)

    /// Feeds one event at time `now`; returns what the shell must do, in order.
    public mutating func handle(_ event: LifecycleEvent, now: Moment) -> [LifecycleDirective] {
        guard phase != .done else { return [] }
        var out: [LifecycleDirective] = []
        if event == .timer { armed = nil }
        switch event {
        case .start: start(now, &out)
        case .startQueued: startQueued(now, &out)
        case .refused(let error): if phase == .new { answerError(error, &out) }
        case .shed: if inQueue { shed(&out) }
        case .scheduler(let answer): scheduled(answer, now, &out)
        case .fallbackPicked(let instance, let knowsModel): fallbackPicked(instance, knowsModel, now, &out)
        case .queueJoined(let admitted): queueJoined(admitted, now, &out)
        case .turn: if phase == .queued { askAgain(now, &out) }
        case .timer: timerFired(now, &out)
        case .connected(let leg): connected(leg, now)
        case .head(let leg, let status, let eventStream): head(leg, status, eventStream, now, &out)
        case .bytes(let leg): bytes(leg, now, &out)
        case .ended(let leg): ended(leg, now, &out)
        case .streamComplete: streamComplete()
        case .failed(let leg, let failure): failed(leg, failure, now, &out)
        case .clientBackPressure(let paused): backPressure(paused, now)
        case .clientGone: clientGone(&out)
        }
        armTimer(&out)
        return out
    }

    // MARK: - Routing

    private mutating func start(_ now: Moment, _ out: inout [LifecycleDirective]) {
        guard phase == .new else { return }
        started = now
        askedAt = now
        phase = .scheduling
        out.append(.askScheduler(exclude: excluded))
    }

    /// Admitted behind others: it waits for the queue to wake it, as a request told to wait does.
    private mutating func startQueued(_ now: Moment, _ out: inout [LifecycleDirective]) {
        guard phase == .new else { return }
        started = now
        askedAt = now
        enterQueue(now)
    }

    private mutating func enterQueue(_ now: Moment) {
        inQueue = true
        queueDeadline = now + queueTimeout
        phase = .queued
    }

    private var queueTimeout: Duration { request.queueTimeout ?? configuration.waitScheduleTimeout }

    private mutating func shed(_ out: inout [LifecycleDirective]) {
        out.append(.count(.queueRejected))
        answerError(.shed(), &out)
    }

    private mutating func scheduled(_ answer: ScheduleAnswer, _ now: Moment, _ out: inout [LifecycleDirective]) {
        guard phase == .scheduling else { return }
        if case .hold = answer {} else { holdingSince = nil }
        if case .late = answer { lateInARow += 1 } else { lateInARow = 0 }
        switch answer {
        case .assigned(let instance, var prefill):
            let number = attemptNumber + 1
            held.append(Slot(attempt: number, leg: .answer, instanceID: instance.id))
            if let pair = prefill {
                let slot = Slot(attempt: number, leg: .prefill, instanceID: pair.id)
                held.append(slot)
                if !request.splittable {
                    // One prefill leg cannot carry a batch of prompts or several choices (the
                    // engines' hand-off parameters are per prompt): the decode side computes it whole.
                    release(slot, .unspecified, &out)
                    prefill = nil
                }
            }
            begin(route: .scheduled, instance, prefill, now, &out)
        case .reused(let instance):
            held.append(Slot(attempt: attemptNumber + 1, leg: .answer, instanceID: instance.id))
            begin(route: .reused, instance, nil, now, &out)
        case .wait(let retryAfter):
            if inQueue {
                wait(retryAfter: retryAfter, now, &out)
            } else {
                phase = .joiningQueue
                out.append(.joinQueue)
            }
        case .hold(let retryAfter):
            // The leader holds a request at most `prefix_hold_ms` (10 s at most); past that, the
            // gateway takes the leader for broken rather than hold the client without end. A
            // request woken from the queue and held asks again on its own timer too: no capacity
            // signal follows a hold.
            let since = holdingSince ?? now
            holdingSince = since
            if now - since >= Self.longestHold {
                return answerError(.upstream("The scheduler held the request for more than \(Self.longestHold).", status: 503), &out)
            }
            phase = .holding
            nextTry = now + max(retryAfter, .milliseconds(1))
        case .noInstance(let why):
            answerError(excluded.isEmpty ? .modelNotFound(request.model) : .upstream("No other instance can take the request: \(why)"), &out)
        case .noneUp(let why):
            answerError(excluded.isEmpty ? .noInstanceUp(request.model) : .upstream("No other instance can take the request: \(why)"), &out)
        case .late where inQueue && lateInARow == 1:
            // Once: a leader late twice in a row may be stuck while its connection still
            // answers, and the queue must not keep its requests until their time to live.
            wait(retryAfter: .zero, now, &out)
        case .unavailable, .late:
            phase = .pickingFallback
            out.append(.pickFallback(exclude: excluded))
        }
    }

    private mutating func fallbackPicked(_ instance: InstanceRef?, _ knowsModel: Bool, _ now: Moment, _ out: inout [LifecycleDirective]) {
        guard phase == .pickingFallback else { return }
        guard let instance else {
            if excluded.isEmpty, !knowsModel { return answerError(.modelNotFound(request.model), &out) }
            return answerError(
                .upstream("The scheduler does not answer and no cached instance of '\(request.model)' is left to try.", status: 503), &out)
        }
        begin(route: .fallback, instance, nil, now, &out)
    }

    private mutating func queueJoined(_ admitted: Bool, _ now: Moment, _ out: inout [LifecycleDirective]) {
        guard phase == .joiningQueue else { return }
        guard admitted else {
            out.append(.count(.queueRejected))
            return answerError(.queueFull(size: configuration.maxQueueSize), &out)
        }
        enterQueue(now)
    }

    /// The scheduler said wait again, to a request already in the queue: it goes back to its
    /// place there until woken again or its time to live runs out.
    private mutating func wait(retryAfter: Duration, _ now: Moment, _ out: inout [LifecycleDirective]) {
        if let deadline = queueDeadline, now >= deadline { return timedOut(&out) }
        phase = .queued
        out.append(.waitForTurn)
    }

    private mutating func timedOut(_ out: inout [LifecycleDirective]) {
        let seconds = Double(queueTimeout.components.seconds) + Double(queueTimeout.components.attoseconds) / 1e18
        answerError(.waitTimedOut(seconds: seconds), &out)
    }

    private mutating func askAgain(_ now: Moment, _ out: inout [LifecycleDirective]) {
        phase = .scheduling
        out.append(.askScheduler(exclude: excluded))
    }

    // MARK: - Attempts

    private mutating func begin(route: Route, _ instance: InstanceRef, _ prefill: PrefillTarget?, _ now: Moment, _ out: inout [LifecycleDirective]) {
        if inQueue {
            inQueue = false
            out.append(.leaveQueue)
        }
        attemptNumber += 1
        out.append(.count(.routed(route, after: now - askedAt)))
        var next = Attempt(number: attemptNumber, route: route, answer: instance, prefill: prefill)
        phase = .attempting
        switch prefill?.flow {
        case nil:
            next.answerStage = .connecting(since: now)
            out.append(.connect(.answer, instance, body: .client, attempt: attemptNumber))
        case .vllm:
            // vLLM's sequence: the prefill leg first; the decode leg once its answer is in.
            next.prefillStage = .connecting(since: now)
            out.append(.connect(.prefill, prefillInstance(prefill!), body: .vllmPrefill, attempt: attemptNumber))
        case .sglang:
            // SGLang's pair: both legs at once, joined by one bootstrap room.
            next.prefillStage = .connecting(since: now)
            next.answerStage = .connecting(since: now)
            out.append(.connect(.prefill, prefillInstance(prefill!), body: .sglangPair, attempt: attemptNumber))
            out.append(.connect(.answer, instance, body: .sglangPair, attempt: attemptNumber))
        }
        attempt = next
    }

    private func prefillInstance(_ target: PrefillTarget) -> InstanceRef {
        InstanceRef(id: target.id, endpointURL: target.endpointURL, model: request.model, isUp: true, isPrefillOnly: true)
    }

    private func stage(_ leg: Leg) -> Stage? { leg == .answer ? attempt?.answerStage : attempt?.prefillStage }

    private mutating func setStage(_ leg: Leg, _ stage: Stage?) {
        if leg == .answer { attempt?.answerStage = stage } else { attempt?.prefillStage = stage }
    }

    private mutating func connected(_ leg: Leg, _ now: Moment) {
        guard case .connecting = stage(leg) else { return }
        setStage(leg, .awaitingHead(sent: now))
    }

    private mutating func head(_ leg: Leg, _ status: Int, _ eventStream: Bool, _ now: Moment, _ out: inout [LifecycleDirective]) {
        let sent: Moment
        switch stage(leg) {
        case .awaitingHead(let at): sent = at
        // A head without a separate `connected` (a pooled connection): sent just now.
        case .connecting: sent = now
        default: return
        }
        if status >= 400, RetryPolicy.decide(status: status) == .retryElsewhere {
            return failed(leg, .refused(status: status), now, &out)
        }
        if leg == .answer, eventStream, status < 400 {
            setStage(leg, .awaitingFirstChunk(sent: sent, status: status))
        } else {
            setStage(leg, .collecting(sent: sent, status: status))
        }
    }

    private mutating func bytes(_ leg: Leg, _ now: Moment, _ out: inout [LifecycleDirective]) {
        switch stage(leg) {
        case .relaying(let sent, let status, _):
            setStage(leg, .relaying(sent: sent, status: status, lastByte: now))
        case .awaitingFirstChunk(let sent, let status):
            setStage(leg, .ready(sent: sent, status: status, streamed: true, ended: false))
            answerReady(now, &out)
        default:
            break
        }
    }

    private mutating func backPressure(_ paused: Bool, _ now: Moment) {
        clientPaused = paused
        // Reading resumes now: the engine's idle window starts again.
        if !paused, case .relaying(let sent, let status, _) = attempt?.answerStage {
            attempt?.answerStage = .relaying(sent: sent, status: status, lastByte: now)
        }
    }

    private mutating func ended(_ leg: Leg, _ now: Moment, _ out: inout [LifecycleDirective]) {
        switch stage(leg) {
        case .relaying(_, let status, _):
            // The stream reached its end on the client.
            completeStream(status: status, clientThere: true, &out)
        case .awaitingFirstChunk(let sent, let status):
            // An event stream the engine ended at once, with no event: relayed as it is.
            setStage(leg, .ready(sent: sent, status: status, streamed: true, ended: true))
            answerReady(now, &out)
        case .collecting(let sent, let status):
            if leg == .prefill { return prefillAnswered(status: status, now, &out) }
            setStage(leg, .ready(sent: sent, status: status, streamed: false, ended: true))
            answerReady(now, &out)
        case .ready(let sent, let status, let streamed, false):
            setStage(leg, .ready(sent: sent, status: status, streamed: streamed, ended: true))
        default:
            break
        }
    }

    private mutating func streamComplete() {
        guard case .relaying = attempt?.answerStage else { return }
        attempt?.answerComplete = true
    }

    /// The relayed stream is over and the client has all of it: the engine served the request.
    private mutating func completeStream(status: Int, clientThere: Bool, _ out: inout [LifecycleDirective]) {
        guard let current = attempt else { return }
        setStage(.answer, nil)
        if clientThere { out.append(.endStream) }
        out.append(.markSucceeded(instanceID: current.answer.id))
        releaseAnswer(status < 400 ? .ok : .clientError, withUsage: true, &out)
        finish(&out)
    }

    /// The answer leg has something for the client. SGLang's pair holds it until the prefill leg
    /// is settled (its failure may be why the decode side answers at all) or patience runs out.
    private mutating func answerReady(_ now: Moment, _ out: inout [LifecycleDirective]) {
        guard let current = attempt else { return }
        if current.prefill?.flow == .sglang, !current.prefillDone, current.prefillStage != nil {
            if current.patienceUntil == nil { attempt?.patienceUntil = now + configuration.handoffPatience }
            return
        }
        sendAnswer(now, &out)
    }

    /// The answer leg's answer goes to the client: whole, or as a stream from here on.
    private mutating func sendAnswer(_ now: Moment, _ out: inout [LifecycleDirective]) {
        guard let current = attempt, case .ready(let sent, let status, let streamed, let ended) = current.answerStage else { return }
        attempt?.patienceUntil = nil
        if current.prefillStage != nil {
            // SGLang: the decode side answers and the prefill leg has not ended within patience;
            // its own answer is not needed (it handed the KV over, or the decode side computed it).
            setStage(.prefill, nil)
            out.append(.cancel(.prefill))
            releaseSlot(leg: .prefill, .ok, &out)
        }
        if let flow = current.prefill?.flow { out.append(.count(.handoff(flow, outcome: "ok"))) }
        // The pair's prefill instance is named whenever the answer came through a hand-off (SGLang's
        // decode side may answer before the prefill leg's own answer ends).
        let source = AnswerSource(instanceID: current.answer.id, route: current.route, prefillInstanceID: current.prefill?.id)
        phase = .relaying
        if !streamed {
            out.append(.respond(.answer, source))
            setStage(.answer, nil)
            out.append(.markSucceeded(instanceID: current.answer.id))
            releaseAnswer(status < 400 ? .ok : .clientError, withUsage: true, &out)
            return finish(&out)
        }
        out.append(.startStream(.answer, source))
        if ended {
            setStage(.answer, nil)
            out.append(.endStream)
            out.append(.markSucceeded(instanceID: current.answer.id))
            releaseAnswer(status < 400 ? .ok : .clientError, withUsage: true, &out)
            return finish(&out)
        }
        setStage(.answer, .relaying(sent: sent, status: status, lastByte: now))
    }

    /// The prefill leg's whole answer is in.
    private mutating func prefillAnswered(status: Int, _ now: Moment, _ out: inout [LifecycleDirective]) {
        guard let current = attempt, let prefill = current.prefill else { return }
        setStage(.prefill, nil)
        if status >= 400 {
            // About the request, not the instance (a retryable status failed the leg earlier).
            if case .ready = current.answerStage {
                // SGLang: the decode side already answers; that answer stands.
                releaseSlot(leg: .prefill, .clientError, &out)
                return sendAnswer(now, &out)
            }
            // The client gets the prefill instance's answer.
            if current.answerStage != nil {
                setStage(.answer, nil)
                out.append(.cancel(.answer))
            }
            releaseSlot(leg: .answer, .unspecified, &out)
            phase = .relaying
            out.append(.respond(.prefill, AnswerSource(instanceID: prefill.id, route: current.route)))
            releaseSlot(leg: .prefill, .clientError, &out)
            return finish(&out)
        }
        attempt?.prefillDone = true
        releaseSlot(leg: .prefill, .ok, &out)
        // The decode side's Finish names the prefill instance that computed its prompt.
        if let index = held.firstIndex(where: { $0.attempt == current.number && $0.leg == .answer }) {
            held[index].prefillInstanceID = prefill.id
        }
        switch prefill.flow {
        case .vllm:
            attempt?.answerStage = .connecting(since: now)
            out.append(.connect(.answer, current.answer, body: .vllmDecode, attempt: current.number))
        case .sglang:
            if let failure = current.answerFailure { return attemptFailed(blaming: .answer, failure, now, &out) }
            if case .ready = current.answerStage { sendAnswer(now, &out) }
        }
    }

    // MARK: - Failures and timeouts

    private mutating func failed(_ leg: Leg, _ failure: UpstreamFailure, _ now: Moment, _ out: inout [LifecycleDirective]) {
        guard let current = attempt, stage(leg) != nil else { return }
        if leg == .answer, current.answerComplete, case .relaying(_, let status, _) = current.answerStage {
            // The client already has the whole answer; only the response's own end went missing
            // (or never came in time). Nothing is lost, and nothing is appended after `[DONE]`.
            out.append(.cancel(.answer))
            return completeStream(status: status, clientThere: true, &out)
        }
        if leg == .answer, case .relaying = current.answerStage {
            // Bytes reached the client: no retry. The stream ends with an error event.
            setStage(.answer, nil)
            out.append(.cancel(.answer))
            out.append(.count(.upstreamError(instanceID: current.answer.id)))
            out.append(.endStreamWithError(.upstream("The engine \(current.answer.id) failed while answering: \(failure)")))
            releaseAnswer(.engineError, withUsage: true, &out)
            return finish(&out)
        }
        if leg == .prefill {
            setStage(.prefill, nil)
            out.append(.cancel(.prefill))
            if case .ready = current.answerStage {
                // SGLang: the decode side already answers, so it has the KV.
                out.append(.markFailed(instanceID: current.prefill!.id))
                out.append(.count(.upstreamError(instanceID: current.prefill!.id)))
                releaseSlot(leg: .prefill, .engineError, &out)
                return sendAnswer(now, &out)
            }
            return prefillFailed(failure, &out, now)
        }
        if current.prefill?.flow == .sglang, !current.prefillDone, current.prefillStage != nil {
            // It may have failed because the prefill leg did: hear that leg out, briefly.
            setStage(.answer, nil)
            out.append(.cancel(.answer))
            attempt?.answerFailure = failure
            if current.patienceUntil == nil { attempt?.patienceUntil = now + configuration.handoffPatience }
            return
        }
        attemptFailed(blaming: .answer, failure, now, &out)
    }

    /// The prefill leg failed before the decode side answered: the prefill instance is to blame,
    /// both slots go back, and the request is split again with another prefill instance.
    private mutating func prefillFailed(_ failure: UpstreamFailure, _ out: inout [LifecycleDirective], _ now: Moment) {
        guard let current = attempt, let prefill = current.prefill else { return }
        if current.answerStage != nil {
            setStage(.answer, nil)
            out.append(.cancel(.answer))
        }
        out.append(.count(.handoff(prefill.flow, outcome: "prefill_failed")))
        out.append(.markFailed(instanceID: prefill.id))
        out.append(.count(.upstreamError(instanceID: prefill.id)))
        releaseSlot(leg: .prefill, .engineError, &out)
        releaseSlot(leg: .answer, .unspecified, &out)
        lastProblem = "prefill \(prefill.id) \(failure)"
        excluded.append(prefill.id)
        retryOrGiveUp(now, &out)
    }

    /// The answering instance failed before any byte reached the client: it is excluded and the
    /// request asks for another, while attempts are left.
    private mutating func attemptFailed(blaming leg: Leg, _ failure: UpstreamFailure, _ now: Moment, _ out: inout [LifecycleDirective]) {
        guard let current = attempt else { return }
        for live in [Leg.answer, .prefill] where stage(live) != nil {
            setStage(live, nil)
            out.append(.cancel(live))
        }
        if let flow = current.prefill?.flow { out.append(.count(.handoff(flow, outcome: "decode_failed"))) }
        out.append(.markFailed(instanceID: current.answer.id))
        out.append(.count(.upstreamError(instanceID: current.answer.id)))
        releaseSlot(leg: .answer, .engineError, &out)
        releaseSlot(leg: .prefill, current.prefillDone ? .ok : .unspecified, &out)
        lastProblem = "\(current.answer.id) \(failure)"
        excluded.append(current.answer.id)
        retryOrGiveUp(now, &out)
    }

    private mutating func retryOrGiveUp(_ now: Moment, _ out: inout [LifecycleDirective]) {
        attempt = nil
        guard attemptNumber < configuration.retryCount else {
            out.append(.count(.gaveUp))
            return answerError(
                .upstream("No engine could serve the request after \(configuration.retryCount + 1) attempts; last: \(lastProblem)"), &out)
        }
        out.append(.count(.retried))
        askedAt = now
        phase = .scheduling
        out.append(.askScheduler(exclude: excluded))
    }

    private mutating func timerFired(_ now: Moment, _ out: inout [LifecycleDirective]) {
        switch phase {
        case .queued:
            // Woken by the queue, not by its own clock: only its time to live runs here.
            if let deadline = queueDeadline, now >= deadline { timedOut(&out) }
        case .holding:
            if now >= nextTry { askAgain(now, &out) }
        case .attempting, .relaying:
            guard let current = attempt else { return }
            if let patience = current.patienceUntil, now >= patience {
                attempt?.patienceUntil = nil
                if let failure = current.answerFailure { return attemptFailed(blaming: .answer, failure, now, &out) }
                return sendAnswer(now, &out)
            }
            for leg in [Leg.prefill, .answer] {
                if let stage = stage(leg), let expired = expiry(of: stage, leg: leg, now: now) { return failed(leg, expired, now, &out) }
            }
        default:
            break
        }
    }

    /// Whether a leg's head should come early: the answer leg of a streamed request (a prefill
    /// leg is unstreamed in vLLM's flow, and its head comes with the computed prompt).
    private func headArrivesEarly(_ leg: Leg) -> Bool { leg == .answer && request.stream }

    /// The timeout a leg's stage has run into at `now`, if any.
    private func expiry(of stage: Stage, leg: Leg, now: Moment) -> UpstreamFailure? {
        let c = configuration
        switch stage {
        case .connecting(let since):
            return now - since >= c.connectTimeout ? .connectTimedOut : nil
        case .awaitingHead(let sent):
            if now - sent >= c.requestTimeout { return .requestTimedOut }
            return headArrivesEarly(leg) && now - sent >= c.responseHeadersTimeout ? .headersTimedOut : nil
        case .awaitingFirstChunk(let sent, _):
            if now - sent >= c.requestTimeout { return .requestTimedOut }
            return now - sent >= c.firstTokenTimeout ? .firstTokenTimedOut : nil
        case .collecting(let sent, _), .ready(let sent, _, _, _):
            return now - sent >= c.requestTimeout ? .requestTimedOut : nil
        case .relaying(let sent, _, let lastByte):
            if now - sent >= c.requestTimeout { return .requestTimedOut }
            return !clientPaused && now - lastByte >= c.streamIdleTimeout ? .idleTimedOut : nil
        }
    }

    /// The earliest moment something is due.
    private var nextDeadline: Moment? {
        let c = configuration
        var due: [Moment] = []
        switch phase {
        case .queued:
            if let deadline = queueDeadline { due.append(deadline) }
        case .holding:
            due.append(nextTry)
        case .attempting, .relaying:
            if let patience = attempt?.patienceUntil { due.append(patience) }
            for (leg, stage) in [(Leg.answer, attempt?.answerStage), (.prefill, attempt?.prefillStage)] {
                switch stage {
                case nil: break
                case .connecting(let since): due.append(since + c.connectTimeout)
                case .awaitingHead(let sent):
                    due.append(sent + (headArrivesEarly(leg) ? min(c.responseHeadersTimeout, c.requestTimeout) : c.requestTimeout))
                case .awaitingFirstChunk(let sent, _): due.append(sent + min(c.firstTokenTimeout, c.requestTimeout))
                case .collecting(let sent, _), .ready(let sent, _, _, _): due.append(sent + c.requestTimeout)
                case .relaying(let sent, _, let lastByte):
                    due.append(clientPaused ? sent + c.requestTimeout : min(sent + c.requestTimeout, lastByte + c.streamIdleTimeout))
                }
            }
        default:
            break
        }
        return due.min()
    }

    /// Asks for a timer only when the next deadline is earlier than the one already asked for: a
    /// stream's idle deadline moves with every chunk, and the armed timer re-arms when it fires.
    private mutating func armTimer(_ out: inout [LifecycleDirective]) {
        guard phase != .done, let next = nextDeadline else { return }
        if let armed, armed <= next { return }
        armed = next
        out.append(.setTimer(at: next))
    }

    // MARK: - Endings

    private mutating func clientGone(_ out: inout [LifecycleDirective]) {
        if let current = attempt, current.answerComplete, case .relaying(_, let status, _) = current.answerStage {
            // It read `[DONE]` and closed before the engine's response ended: a finished
            // request, not a cancelled one.
            if current.prefillStage != nil {
                setStage(.prefill, nil)
                out.append(.cancel(.prefill))
            }
            out.append(.cancel(.answer))
            return completeStream(status: status, clientThere: false, &out)
        }
        for leg in [Leg.answer, .prefill] where stage(leg) != nil {
            setStage(leg, nil)
            out.append(.cancel(leg))
        }
        if inQueue {
            inQueue = false
            out.append(.leaveQueue)
        }
        out.append(.count(.clientCancelled))
        // No instance is to blame: every slot goes back as cancelled.
        for slot in held { out.append(.release(slot, .clientCancelled, withUsage: slot.leg == .answer && phase == .relaying)) }
        held.removeAll()
        finish(&out)
    }

    private mutating func answerError(_ error: OpenAIError, _ out: inout [LifecycleDirective]) {
        if inQueue {
            inQueue = false
            out.append(.leaveQueue)
        }
        out.append(.answerError(error))
        for slot in held { out.append(.release(slot, .unspecified, withUsage: false)) }
        held.removeAll()
        finish(&out)
    }

    private mutating func releaseAnswer(_ outcome: SlotOutcome, withUsage: Bool, _ out: inout [LifecycleDirective]) {
        guard let current = attempt, let index = held.firstIndex(where: { $0.attempt == current.number && $0.leg == .answer }) else { return }
        out.append(.release(held.remove(at: index), outcome, withUsage: withUsage))
    }

    /// Releases the current attempt's slot of `leg`, if it still holds one (fallback routes hold none).
    private mutating func releaseSlot(leg: Leg, _ outcome: SlotOutcome, _ out: inout [LifecycleDirective]) {
        guard let current = attempt, let index = held.firstIndex(where: { $0.attempt == current.number && $0.leg == leg }) else { return }
        out.append(.release(held.remove(at: index), outcome, withUsage: false))
    }

    private mutating func release(_ slot: Slot, _ outcome: SlotOutcome, _ out: inout [LifecycleDirective]) {
        guard let index = held.firstIndex(of: slot) else { return }
        out.append(.release(held.remove(at: index), outcome, withUsage: false))
    }

    private mutating func finish(_ out: inout [LifecycleDirective]) {
        // Whatever path ended the request, nothing it took stays taken.
        for slot in held { out.append(.release(slot, .unspecified, withUsage: false)) }
        held.removeAll()
        if inQueue {
            inQueue = false
            out.append(.leaveQueue)
        }
        attempt = nil
        phase = .done
        out.append(.done)
    }
}
