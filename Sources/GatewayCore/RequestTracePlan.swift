/// Which spans one request's trace has and when each begins and ends, read off the lifecycle's
/// events and directives. Pure, like the lifecycle it watches: the shell feeds it what the
/// lifecycle was fed and what it answered, and starts and ends the spans it is told to (with
/// these moments as their timestamps), so a trace shows exactly the phases the lifecycle went
/// through, each attempt and leg on its own.
///
/// The trace of a request (Docs/observability.md, "Traces"):
///
///     request                         the client's request, from its start to `done`
///     ├── schedule                    each call to the scheduler (the leader's `decide` joins it)
///     ├── queue wait                  in the gateway's wait queue for an engine with room
///     └── engine request              each leg of each attempt (its context goes to the engine)
///         ├── connect                 to a pooled or new connection, until the request is sent
///         ├── time to first token     until the first chunk of an event stream (or the head)
///         └── stream                  the event stream, first chunk to last
public struct RequestTracePlan: Sendable {
    public enum SpanKind: Sendable, Hashable {
        case request
        case schedule
        case queueWait
        case engine
        case connect
        case firstToken
        case stream
    }

    /// One span of the trace: an engine leg's spans carry their leg and attempt.
    public struct SpanKey: Sendable, Hashable {
        public var kind: SpanKind
        public var leg: Leg?
        public var attempt: Int

        public init(_ kind: SpanKind, leg: Leg? = nil, attempt: Int = 0) {
            self.kind = kind
            self.leg = leg
            self.attempt = attempt
        }

        public var name: String {
            switch kind {
            case .request: "request"
            case .schedule: "schedule"
            case .queueWait: "queue wait"
            case .engine: "engine request"
            case .connect: "connect"
            case .firstToken: "time to first token"
            case .stream: "stream"
            }
        }

        /// The span it hangs under (nil: the root).
        public var parent: SpanKey? {
            switch kind {
            case .request: nil
            case .schedule, .queueWait, .engine: SpanKey(.request)
            case .connect, .firstToken, .stream: SpanKey(.engine, leg: leg, attempt: attempt)
            }
        }
    }

    public enum Attribute: Sendable, Equatable {
        case string(String)
        case int(Int)
        case bool(Bool)
    }

    public enum Directive: Sendable, Equatable {
        case begin(SpanKey, at: Moment)
        case attribute(SpanKey, String, Attribute)
        /// `error`: the span ends in failure, with this description.
        case end(SpanKey, at: Moment, error: String?)
    }

    /// Spans begun and not ended, in the order they began.
    private var open: [SpanKey] = []
    /// The legs of the attempt under way, by leg (an event names a leg, not its attempt).
    private var attemptOf: [Leg: Int] = [:]
    /// Legs whose first token (or answer head) has come.
    private var firstTokenSeen: Set<Leg> = []
    /// The request is done: nothing begins any more (a late event of a cancelled leg).
    private var finished = false
    /// Each leg's latest response status, and the status the client was answered with.
    private var headStatus: [Leg: Int] = [:]
    private var answeredStatus: Int?
    /// The relayed stream's terminal event reached the client.
    private var completed = false

    public init() {}

    public var openSpans: [SpanKey] { open }

    /// Feeds what the lifecycle was fed (`event`, at `now`) and what it answered.
    public mutating func observe(_ event: LifecycleEvent, answered directives: [LifecycleDirective], now: Moment) -> [Directive] {
        guard !finished else { return [] }
        var out: [Directive] = []
        see(event, now, &out)
        for directive in directives { see(directive, now, &out) }
        return out
    }

    // MARK: - Events

    private mutating func see(_ event: LifecycleEvent, _ now: Moment, _ out: inout [Directive]) {
        switch event {
        case .start:
            begin(SpanKey(.request), now, &out)
        case .startQueued:
            begin(SpanKey(.request), now, &out)
            begin(SpanKey(.queueWait), now, &out)
        case .refused(let error):
            begin(SpanKey(.request), now, &out)
            out.append(.attribute(SpanKey(.request), "junction.refused", .string(error.code ?? error.type)))
        case .shed:
            end(SpanKey(.queueWait), now, "shed from the full wait queue", &out)
        case .scheduler(let answer):
            let schedule = SpanKey(.schedule)
            out.append(.attribute(schedule, "junction.schedule.answer", .string(Self.answerName(answer))))
            switch answer {
            case .assigned(let instance, let prefill):
                out.append(.attribute(schedule, "junction.instance_id", .string(instance.id)))
                if let prefill { out.append(.attribute(schedule, "junction.prefill_instance_id", .string(prefill.id))) }
                end(schedule, now, nil, &out)
            case .reused(let instance):
                out.append(.attribute(schedule, "junction.instance_id", .string(instance.id)))
                end(schedule, now, nil, &out)
            case .wait, .hold: end(schedule, now, nil, &out)
            case .noInstance(let why), .noneUp(let why), .unavailable(let why), .late(let why): end(schedule, now, why, &out)
            }
        case .fallbackPicked(let instance, _):
            out.append(.attribute(SpanKey(.request), "junction.fallback_instance_id", .string(instance?.id ?? "")))
        case .queueJoined(let admitted):
            if !admitted { end(SpanKey(.queueWait), now, "the wait queue is full", &out) }
        case .connected(let leg):
            guard let attempt = attemptOf[leg] else { return }
            end(SpanKey(.connect, leg: leg, attempt: attempt), now, nil, &out)
            begin(SpanKey(.firstToken, leg: leg, attempt: attempt), now, &out)
        case .head(let leg, let status, let eventStream):
            guard let attempt = attemptOf[leg] else { return }
            headStatus[leg] = status
            out.append(.attribute(SpanKey(.engine, leg: leg, attempt: attempt), "http.response.status_code", .int(status)))
            // An unstreamed answer (or a refusal) comes whole: its head is as early as it gets.
            if !eventStream || status >= 400 { firstToken(leg, attempt, now, &out) }
        case .bytes(let leg):
            guard let attempt = attemptOf[leg], !firstTokenSeen.contains(leg) else { return }
            firstToken(leg, attempt, now, &out)
            begin(SpanKey(.stream, leg: leg, attempt: attempt), now, &out)
        case .ended(let leg):
            endLeg(leg, now, nil, &out)
        case .streamComplete:
            // The client has the whole stream: the engine's part is over, whatever comes after
            // (the response's end, a client that closes first, a cut) is not its failure.
            guard firstTokenSeen.contains(.answer) else { return }
            endLeg(.answer, now, nil, &out)
            completed = true
        case .failed(let leg, let failure):
            endLeg(leg, now, failure.description, &out)
        case .clientGone:
            if !completed { out.append(.attribute(SpanKey(.request), "junction.client_gone", .bool(true))) }
        case .turn, .timer, .clientBackPressure:
            break
        }
    }

    // MARK: - Directives

    private mutating func see(_ directive: LifecycleDirective, _ now: Moment, _ out: inout [Directive]) {
        switch directive {
        case .askScheduler(let exclude):
            let schedule = SpanKey(.schedule)
            begin(schedule, now, &out)
            if !exclude.isEmpty { out.append(.attribute(schedule, "junction.excluded_instances", .int(exclude.count))) }
        case .joinQueue:
            begin(SpanKey(.queueWait), now, &out)
        case .leaveQueue:
            end(SpanKey(.queueWait), now, nil, &out)
        case .connect(let leg, let instance, let body, let attempt):
            if attemptOf[leg] != nil { endLeg(leg, now, "replaced by attempt \(attempt)", &out) }
            attemptOf[leg] = attempt
            firstTokenSeen.remove(leg)
            let engine = SpanKey(.engine, leg: leg, attempt: attempt)
            begin(engine, now, &out)
            out.append(.attribute(engine, "junction.instance_id", .string(instance.id)))
            out.append(.attribute(engine, "junction.leg", .string(leg == .answer ? "answer" : "prefill")))
            out.append(.attribute(engine, "junction.attempt", .int(attempt)))
            out.append(.attribute(engine, "url.full", .string(instance.endpointURL)))
            if let handoff = Self.handoffName(body) { out.append(.attribute(engine, "junction.handoff", .string(handoff))) }
            begin(SpanKey(.connect, leg: leg, attempt: attempt), now, &out)
        case .cancel(let leg):
            endLeg(leg, now, "cancelled", &out)
        case .respond(let leg, let source), .startStream(let leg, let source):
            let request = SpanKey(.request)
            let status = headStatus[leg] ?? 502
            answeredStatus = status
            out.append(.attribute(request, "http.response.status_code", .int(status)))
            out.append(.attribute(request, "junction.instance_id", .string(source.instanceID)))
            out.append(.attribute(request, "junction.route", .string(source.route.rawValue)))
            if let prefill = source.prefillInstanceID { out.append(.attribute(request, "junction.prefill_instance_id", .string(prefill))) }
        case .answerError(let error):
            let request = SpanKey(.request)
            answeredStatus = error.status
            out.append(.attribute(request, "http.response.status_code", .int(error.status)))
            out.append(.attribute(request, "error.type", .string(error.type)))
            out.append(.attribute(request, "junction.error", .string(error.message)))
        case .endStreamWithError(let error):
            out.append(.attribute(SpanKey(.request), "junction.error", .string(error.message)))
        case .count(.retried):
            out.append(.attribute(SpanKey(.request), "junction.retried", .bool(true)))
        case .done:
            // Whatever is still open ends with the request, innermost first.
            // A server span fails on a 5xx answer only: a 4xx is the client's mistake.
            let failed = answeredStatus.flatMap { $0 >= 500 ? "answered HTTP \($0)" : nil }
            while let last = open.last {
                end(last, now, last.kind == .request ? failed : "unfinished when the request ended", &out)
            }
            finished = true
        case .pickFallback, .waitForTurn, .setTimer, .endStream, .release, .markFailed, .markSucceeded, .count:
            break
        }
    }

    // MARK: - Helpers

    private mutating func firstToken(_ leg: Leg, _ attempt: Int, _ now: Moment, _ out: inout [Directive]) {
        firstTokenSeen.insert(leg)
        end(SpanKey(.firstToken, leg: leg, attempt: attempt), now, nil, &out)
    }

    /// Ends a leg's spans: its open children first, then the engine request.
    private mutating func endLeg(_ leg: Leg, _ now: Moment, _ error: String?, _ out: inout [Directive]) {
        guard let attempt = attemptOf.removeValue(forKey: leg) else { return }
        for kind in [SpanKind.connect, .firstToken, .stream] {
            end(SpanKey(kind, leg: leg, attempt: attempt), now, error, &out)
        }
        end(SpanKey(.engine, leg: leg, attempt: attempt), now, error, &out)
    }

    private mutating func begin(_ key: SpanKey, _ now: Moment, _ out: inout [Directive]) {
        guard !open.contains(key) else { return }
        open.append(key)
        out.append(.begin(key, at: now))
    }

    private mutating func end(_ key: SpanKey, _ now: Moment, _ error: String?, _ out: inout [Directive]) {
        guard let index = open.firstIndex(of: key) else { return }
        open.remove(at: index)
        out.append(.end(key, at: now, error: error))
    }

    static func handoffName(_ body: LegBody) -> String? {
        switch body {
        case .client: nil
        case .vllmPrefill: "vllm_prefill"
        case .vllmDecode: "vllm_decode"
        case .sglangPair: "sglang_pair"
        }
    }

    static func answerName(_ answer: ScheduleAnswer) -> String {
        switch answer {
        case .assigned: "assigned"
        case .reused: "reused"
        case .wait: "wait"
        case .hold: "hold"
        case .noInstance: "no_instance"
        case .noneUp: "none_up"
        case .unavailable: "unavailable"
        case .late: "late"
        }
    }
}
