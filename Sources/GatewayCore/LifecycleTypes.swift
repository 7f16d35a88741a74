/// The vocabulary of `RequestLifecycle`: the events a shell feeds it and the directives it
/// returns. Time is a value (`Moment`: time since the gateway started), so every path can be
/// driven and checked in a test without a clock or a socket.
public typealias Moment = Duration

/// How a request's engine was chosen. A scheduled or reused route holds a scheduler slot; a
/// fallback one does not.
public enum Route: String, Sendable, Equatable {
    case scheduled
    /// Sent where the conversation's previous turn went, under the leader's grant (`ReuseGrants`),
    /// without waiting for it; the leader books it from the gateway's notice.
    case reused
    case fallback
}

/// One of the (at most two) engine requests of an attempt: the instance whose answer the client
/// gets (the only one, or pd-split's decode side), and pd-split's prefill side.
public enum Leg: Sendable, Hashable {
    case answer
    case prefill
}

/// What a leg sends the engine.
public enum LegBody: Sendable, Equatable {
    /// The client's body as it arrived.
    case client
    /// vLLM's prefill leg: one token, unstreamed, asking for a remote decode.
    case vllmPrefill
    /// vLLM's decode leg: the client's body with the prefill answer's `kv_transfer_params`.
    case vllmDecode
    /// SGLang's pair: the same body (bootstrap host, port and one room per attempt) to both legs.
    case sglangPair
}

/// A scheduler slot: the leader counts a request in flight on an instance from its decision until
/// the gateway's `Finish`. Unique per attempt and leg, so "released exactly once" is checkable.
public struct Slot: Sendable, Hashable {
    public var attempt: Int
    public var leg: Leg
    public var instanceID: String
    /// On the answer leg of a hand-off that happened: the prefill instance (the Finish names it).
    public var prefillInstanceID: String

    public init(attempt: Int, leg: Leg, instanceID: String, prefillInstanceID: String = "") {
        self.attempt = attempt
        self.leg = leg
        self.instanceID = instanceID
        self.prefillInstanceID = prefillInstanceID
    }
}

/// How a slot's request ended, as the scheduler's `Finish` says it.
public enum SlotOutcome: Sendable, Equatable {
    case ok
    case clientError
    case engineError
    case clientCancelled
    /// Released without being used (a decode side whose prefill failed, a pair not split).
    case unspecified
}

/// Who answers the client, for the `X-Junction-*` headers.
public struct AnswerSource: Sendable, Equatable {
    public var instanceID: String
    public var route: Route
    /// pd-split: the prefill instance that computed the prompt.
    public var prefillInstanceID: String?

    public init(instanceID: String, route: Route, prefillInstanceID: String? = nil) {
        self.instanceID = instanceID
        self.route = route
        self.prefillInstanceID = prefillInstanceID
    }
}

/// Why an engine request failed, before or after its answer began.
public enum UpstreamFailure: Sendable, Equatable, CustomStringConvertible {
    /// No connection (refused, reset before any answer, a reused connection that broke twice).
    case unreachable(String)
    /// Answered with a status that means "not me" (5xx, 429).
    case refused(status: Int)
    /// The answer broke off (connection closed or malformed) after it began.
    case cut(String)
    case connectTimedOut
    case headersTimedOut
    case firstTokenTimedOut
    case idleTimedOut
    case requestTimedOut

    public var description: String {
        switch self {
        case .unreachable(let why): "unreachable: \(why)"
        case .refused(let status): "answered HTTP \(status)"
        case .cut(let why): "the answer broke off: \(why)"
        case .connectTimedOut: "no connection within the connect timeout"
        case .headersTimedOut: "no response headers within response_headers_timeout_ms"
        case .firstTokenTimedOut: "no first token within first_token_timeout_ms"
        case .idleTimedOut: "sent nothing for stream_idle_timeout_ms"
        case .requestTimedOut: "did not finish within upstream_timeout_ms"
        }
    }
}

/// What a scheduler call came back with (the link follows `NotLeader` redirects itself).
public enum ScheduleAnswer: Sendable, Equatable {
    /// `prefill`: pd-split chose a pair; `instance` is the decode side.
    case assigned(InstanceRef, prefill: PrefillTarget?)
    /// The gateway held the leader's grant to send this request where the conversation's
    /// previous turn went (`ReuseGrants`): no call was waited for; the leader is told.
    case reused(InstanceRef)
    /// Every engine is saturated: wait for capacity, ask again after at most `retryAfter`.
    case wait(retryAfter: Duration)
    /// Its instance is computing its prefix for a request sent just before: ask again after
    /// `retryAfter`, outside the wait queue (the leader bounds how long it holds a request).
    case hold(retryAfter: Duration)
    /// No instance of the model can take it (after the exclusions).
    case noInstance(String)
    /// As `noInstance`, for a model the gateway's instance table says is served: its instances
    /// are registered but none is up (an engine restarting, a node gone). A retryable 503, not
    /// the 404 of a model nobody serves.
    case noneUp(String)
    /// No scheduler answered in time: route by fallback.
    case unavailable(String)
    /// The leader, answering other calls, did not answer this one in time. A request that waits
    /// in the queue goes back to its place (engines were full when it was last told; routing it
    /// blind would skip the queue it waited in), unless its previous answer was late too; any
    /// other is routed by fallback.
    case late(String)
}

public enum LifecycleEvent: Sendable, Equatable {
    /// Flow control admitted the request and nothing waiting goes before it: ask the scheduler.
    case start
    /// Flow control admitted the request into the wait queue behind others that go first.
    case startQueued
    /// Flow control refused the request (a tenant limit, or the full queue shed it on arrival).
    case refused(OpenAIError)
    /// The full queue dropped this waiting request for one that goes before it.
    case shed
    case scheduler(ScheduleAnswer)
    /// The fallback round-robin's pick (nil: none left); `tableKnowsModel` tells a 404 from a 503.
    case fallbackPicked(InstanceRef?, tableKnowsModel: Bool)
    /// The shared wait queue took the request (false: it is full, and this request is the one
    /// to shed).
    case queueJoined(admitted: Bool)
    /// The queue woke this waiting request to ask the scheduler (a capacity signal, or its
    /// period without one).
    case turn
    /// The timer the last `setTimer` asked for fired (or any time: early ticks are harmless).
    case timer
    case connected(Leg)
    case head(Leg, status: Int, eventStream: Bool)
    /// Body bytes arrived on a leg (a streamed answer's chunk).
    case bytes(Leg)
    /// A whole (unstreamed) body was collected, or an event stream ended cleanly.
    case ended(Leg)
    /// The relayed event stream's terminal event (`data: [DONE]`) went to the client: it has
    /// the whole answer, though the engine's response may not have ended yet. A client that
    /// closes from now on (the `openai` client closes as soon as it reads `[DONE]`) has not
    /// cancelled anything, and the engine has served the request.
    case streamComplete
    case failed(Leg, UpstreamFailure)
    /// The client stopped taking a relayed stream's bytes (true), so the engine is not read
    /// either, or takes them again (false). A stream paused by its client is not the engine's
    /// silence: the idle timeout waits.
    case clientBackPressure(paused: Bool)
    /// The client closed its connection (or a write to it failed).
    case clientGone
}

public enum LifecycleCount: Sendable, Equatable {
    /// A routing decision, and how long it took from the first ask.
    case routed(Route, after: Duration)
    case retried
    case gaveUp
    case upstreamError(instanceID: String)
    case clientCancelled
    case queueRejected
    /// pd-split hand-offs by flow and outcome (ok, prefill_failed, decode_failed).
    case handoff(HandoffFlow, outcome: String)
}

public enum LifecycleDirective: Sendable, Equatable {
    case askScheduler(exclude: [String])
    case pickFallback(exclude: [String])
    /// Take a place in the shared wait queue; answer with `queueJoined`.
    case joinQueue
    /// Give the place back (exactly once for every admitted `joinQueue` or `startQueued`).
    case leaveQueue
    /// A woken request was told to wait again: put it back in the queue at its first place, and
    /// feed `turn` when it is woken (or `shed` if it is the one dropped to make room).
    case waitForTurn
    /// Feed `timer` at (or after) this moment; replaces any earlier request for a timer.
    case setTimer(at: Moment)
    /// Open a leg: dial (or reuse a pooled connection to) the instance and send the request.
    case connect(Leg, InstanceRef, body: LegBody, attempt: Int)
    /// Drop a leg: close its connection, so the engine stops working on it.
    case cancel(Leg)
    /// Send the client this leg's collected (unstreamed) answer, whole.
    case respond(Leg, AnswerSource)
    /// Send the client this leg's stream head and every chunk from now on, as the client takes them.
    case startStream(Leg, AnswerSource)
    /// The relayed stream ended cleanly: end the client's answer.
    case endStream
    /// A stream that reached the client ends with this error event and `[DONE]`.
    case endStreamWithError(OpenAIError)
    /// Nothing reached the client: answer with this error.
    case answerError(OpenAIError)
    /// Tell the scheduler the slot's request ended. `withUsage`: attach the relayed answer's usage.
    case release(Slot, SlotOutcome, withUsage: Bool)
    /// The fallback router's cool-off: this instance just failed here / served well.
    case markFailed(instanceID: String)
    case markSucceeded(instanceID: String)
    case count(LifecycleCount)
    /// The request is over: nothing more will be asked of the shell.
    case done
}

/// The knobs the lifecycle decides by (Docs/configuration.md names their keys).
public struct LifecycleConfiguration: Sendable, Equatable {
    /// Further instances to try after one failed before any byte reached the client.
    public var retryCount = 2
    public var maxQueueSize = 512
    /// Longest a request waits for an engine with room (`wait_schedule_timeout`), unless its
    /// priority class says otherwise (`LifecycleRequest.queueTimeout`).
    public var waitScheduleTimeout: Duration = .seconds(30)
    /// How often the queue wakes its first waiting request when no capacity signal came
    /// (`wait_schedule_try_period`): the gateway's shell keeps that clock, not each request.
    public var waitScheduleTryPeriod: Duration = .milliseconds(200)
    public var connectTimeout: Duration = .seconds(2)
    /// Streamed requests: engines send an event stream's head before generating, so a head that
    /// does not come means a stuck engine. (An unstreamed answer's head comes with the answer.)
    public var responseHeadersTimeout: Duration = .seconds(30)
    /// Streamed requests: from sending to the first event.
    public var firstTokenTimeout: Duration = .seconds(120)
    /// Between two chunks of a relayed stream.
    public var streamIdleTimeout: Duration = .seconds(60)
    /// From sending to the last byte, any request.
    public var requestTimeout: Duration = .seconds(600)
    /// SGLang's pair: how long one leg's outcome waits for the other's.
    public var handoffPatience: Duration = .seconds(2)

    public init() {}
}

/// What the lifecycle needs to know about the request itself.
public struct LifecycleRequest: Sendable, Equatable {
    public var model: String
    public var stream: Bool
    /// Whether a pd-split hand-off can carry it (one prompt, one choice).
    public var splittable: Bool
    /// How long it may wait in the queue: its priority class's time to live (nil: the
    /// configuration's `waitScheduleTimeout`).
    public var queueTimeout: Duration?

    public init(model: String, stream: Bool, splittable: Bool = true, queueTimeout: Duration? = nil) {
        self.model = model
        self.stream = stream
        self.splittable = splittable
        self.queueTimeout = queueTimeout
    }

    public init(_ features: RequestFeatures, queueTimeout: Duration? = nil) {
        self.init(model: features.model, stream: features.stream, splittable: features.splittable, queueTimeout: queueTimeout)
    }
}
