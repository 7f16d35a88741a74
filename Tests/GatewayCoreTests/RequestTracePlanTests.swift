import GatewayCore
import Seeded
import Testing

/// A lifecycle and its trace plan driven together, as `RequestRun` drives them.
private struct TracedDrive {
    var drive: Drive
    var plan = RequestTracePlan()
    var trace: [RequestTracePlan.Directive] = []

    init(stream: Bool = true, configure: (inout LifecycleConfiguration) -> Void = { _ in }) {
        drive = Drive(stream: stream, configure: configure)
    }

    @discardableResult
    mutating func feed(_ event: LifecycleEvent, after: Duration = .milliseconds(1)) -> [RequestTracePlan.Directive] {
        let out = drive.feed(event, after: after)
        let spans = plan.observe(event, answered: out, now: drive.now)
        trace += spans
        return spans
    }

    /// Span name, begin and end moment, and error, in the order the spans ended.
    var ended: [(String, Moment, Moment, String?)] {
        var begun: [RequestTracePlan.SpanKey: Moment] = [:]
        var out: [(String, Moment, Moment, String?)] = []
        for directive in trace {
            switch directive {
            case .begin(let key, let at): begun[key] = at
            case .end(let key, let at, let error): out.append((key.name, begun[key]!, at, error))
            case .attribute: break
            }
        }
        return out
    }

    func attributes(of kind: RequestTracePlan.SpanKind, attempt: Int = 0) -> [String: RequestTracePlan.Attribute] {
        var out: [String: RequestTracePlan.Attribute] = [:]
        for case .attribute(let key, let name, let value) in trace where key.kind == kind && key.attempt == attempt { out[name] = value }
        return out
    }
}

private let ms = Duration.milliseconds

@Suite struct RequestTracePlanTests {
    @Test func aStreamedRequestHasItsPhasesAsSpansEachUnderItsParent() {
        var t = TracedDrive()
        t.feed(.start)
        t.feed(.scheduler(.assigned(instance("a"), prefill: nil)), after: ms(3))
        t.feed(.connected(.answer), after: ms(2))
        t.feed(.head(.answer, status: 200, eventStream: true), after: ms(5))
        t.feed(.bytes(.answer), after: ms(40))
        t.feed(.bytes(.answer), after: ms(10))
        t.feed(.ended(.answer), after: ms(10))
        #expect(t.drive.machine.isDone && t.plan.openSpans.isEmpty)
        let ended = t.ended.map { "\($0.0) \(Int($0.1 / ms(1)))-\(Int($0.2 / ms(1)))" }
        #expect(
            ended == [
                "schedule 1-4", "connect 4-6", "time to first token 6-51", "stream 51-71", "engine request 4-71", "request 1-71",
            ])
        #expect(t.ended.allSatisfy { $0.3 == nil })
        let engine = t.attributes(of: .engine)
        #expect(engine["junction.instance_id"] == .string("a"))
        #expect(engine["http.response.status_code"] == .int(200))
        let request = t.attributes(of: .request)
        #expect(request["junction.route"] == .string("scheduled"))
        #expect(request["http.response.status_code"] == .int(200))
        #expect(t.attributes(of: .schedule)["junction.schedule.answer"] == .string("assigned"))
    }

    @Test func anUnstreamedAnswersFirstTokenIsItsHeadAndItHasNoStream() {
        var t = TracedDrive(stream: false)
        t.feed(.start)
        t.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        t.feed(.connected(.answer))
        t.feed(.head(.answer, status: 200, eventStream: false), after: ms(30))
        t.feed(.ended(.answer))
        #expect(t.ended.map(\.0) == ["schedule", "connect", "time to first token", "engine request", "request"])
    }

    @Test func aRetryHasOneEngineSpanPerAttemptAndTheFailedOneSaysWhy() {
        var t = TracedDrive()
        t.feed(.start)
        t.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        t.feed(.failed(.answer, .unreachable("refused")))
        // The lifecycle asks again, excluding "a": a second schedule span.
        #expect(t.drive.asked == [[], ["a"]])
        t.feed(.scheduler(.assigned(instance("b"), prefill: nil)))
        t.feed(.connected(.answer))
        t.feed(.head(.answer, status: 200, eventStream: true))
        t.feed(.bytes(.answer))
        t.feed(.ended(.answer))
        let engines = t.ended.filter { $0.0 == "engine request" }
        #expect(engines.map(\.3) == ["unreachable: refused", nil])
        #expect(t.attributes(of: .engine, attempt: 1)["junction.instance_id"] == .string("b"))
        #expect(t.attributes(of: .schedule)["junction.excluded_instances"] == .int(1))
        #expect(t.ended.filter { $0.0 == "schedule" }.count == 2)
        #expect(t.attributes(of: .request)["junction.retried"] == .bool(true))
        #expect(t.plan.openSpans.isEmpty)
    }

    @Test func eventsAfterTheRequestEndedBeginNothing() {
        var t = TracedDrive()
        t.feed(.start)
        t.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        t.feed(.clientGone)
        #expect(t.drive.machine.isDone && t.plan.openSpans.isEmpty)
        // The shell may still hear from the cancelled leg.
        #expect(t.plan.observe(.connected(.answer), answered: [], now: t.drive.now).isEmpty)
        #expect(t.plan.observe(.bytes(.answer), answered: [], now: t.drive.now).isEmpty)
        #expect(t.plan.openSpans.isEmpty)
    }

    @Test func aClientThatClosesAfterTheTerminalEventLeavesNoErrorSpan() {
        var t = TracedDrive()
        t.feed(.start)
        t.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        t.feed(.connected(.answer))
        t.feed(.head(.answer, status: 200, eventStream: true))
        t.feed(.bytes(.answer), after: ms(20))
        t.feed(.streamComplete, after: ms(30))
        t.feed(.clientGone, after: ms(5))
        #expect(t.drive.machine.isDone && t.plan.openSpans.isEmpty)
        #expect(t.ended.allSatisfy { $0.3 == nil }, "\(t.ended.filter { $0.3 != nil })")
        // The stream span ends with the terminal event, not with the connection.
        #expect(t.ended.first { $0.0 == "stream" }.map { $0.2 - $0.1 } == ms(30))
        #expect(t.attributes(of: .request)["junction.client_gone"] == nil)
        // Before it, a client that leaves cuts the stream short: that is an error on the leg.
        var early = TracedDrive()
        early.feed(.start)
        early.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        early.feed(.head(.answer, status: 200, eventStream: true))
        early.feed(.bytes(.answer))
        early.feed(.clientGone)
        #expect(early.ended.first { $0.0 == "stream" }?.3 == "cancelled")
        #expect(early.attributes(of: .request)["junction.client_gone"] == .bool(true))
    }

    @Test func waitingForRoomIsAQueueWaitSpan() {
        var t = TracedDrive { $0.waitScheduleTimeout = .seconds(5) }
        t.feed(.start)
        t.feed(.scheduler(.wait(retryAfter: ms(100))))
        t.feed(.queueJoined(admitted: true))
        t.feed(.turn, after: ms(250))
        t.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        t.feed(.clientGone)
        let queue = t.ended.first { $0.0 == "queue wait" }
        #expect(queue != nil && queue!.2 - queue!.1 >= ms(250))
        #expect(t.attributes(of: .request)["junction.client_gone"] == .bool(true))
        #expect(t.plan.openSpans.isEmpty)
    }

    @Test func aFullQueueEndsTheWaitInErrorAndTheRequestWithTheAnswersStatus() {
        var t = TracedDrive()
        t.feed(.start)
        t.feed(.scheduler(.wait(retryAfter: ms(100))))
        t.feed(.queueJoined(admitted: false))
        #expect(t.drive.machine.isDone)
        #expect(t.ended.first { $0.0 == "queue wait" }?.3 == "the wait queue is full")
        let request = t.attributes(of: .request)
        guard case .int(let status) = request["http.response.status_code"] else { return #expect(Bool(false)) }
        #expect(status == t.drive.answerErrors.first?.status)
        // A 5xx answer fails the request's span; a 4xx (the client's side) does not.
        #expect((t.ended.last?.3 != nil) == (status >= 500))
    }

    @Test func aScheduledPairHasAPrefillAndAnAnswerLegEachWithItsSpans() {
        var t = TracedDrive()
        t.feed(.start)
        t.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .sglang))))
        for leg in [Leg.prefill, .answer] { t.feed(.connected(leg)) }
        t.feed(.head(.prefill, status: 200, eventStream: false))
        t.feed(.ended(.prefill))
        t.feed(.head(.answer, status: 200, eventStream: true))
        t.feed(.bytes(.answer))
        t.feed(.ended(.answer))
        var legs: [String] = []
        for case .attribute(let key, "junction.leg", .string(let leg)) in t.trace where key.kind == .engine { legs.append(leg) }
        #expect(Set(legs) == ["prefill", "answer"])
        #expect(t.attributes(of: .schedule)["junction.prefill_instance_id"] == .string("p"))
        #expect(t.plan.openSpans.isEmpty)
    }

    /// Random sequences, events out of turn included (the lifecycle's own property test's
    /// world): a span begins under an open parent, ends once, never before its children, never
    /// before it began, and nothing is open once the request is done.
    @Test func everySequenceNestsAndClosesEverySpan() {
        for seed in UInt64(1)...3_000 {
            var random = SplitMix64(seed: seed)
            var t = TracedDrive(stream: random.next() % 2 == 0) { $0.retryCount = 2; $0.waitScheduleTimeout = .milliseconds(800) }
            var open: [RequestTracePlan.SpanKey: Moment] = [:]
            var problems: [String] = []
            func check(_ directives: [RequestTracePlan.Directive], _ now: Moment) {
                for directive in directives {
                    switch directive {
                    case .begin(let key, let at):
                        if open[key] != nil { problems.append("\(key) began twice") }
                        if let parent = key.parent, open[parent] == nil { problems.append("\(key) began outside \(parent)") }
                        if at != now { problems.append("\(key) began at another time") }
                        open[key] = at
                    case .end(let key, let at, _):
                        guard let began = open.removeValue(forKey: key) else {
                            problems.append("\(key) ended but was not open")
                            continue
                        }
                        if at < began { problems.append("\(key) ended before it began") }
                        if open.keys.contains(where: { $0.parent == key }) { problems.append("\(key) ended before a child") }
                    case .attribute:
                        break
                    }
                }
            }
            let legs: [Leg] = [.answer, .prefill]
            func randomEvent() -> LifecycleEvent {
                let leg = legs[Int(random.next() % 2)]
                switch random.next() % 13 {
                case 0: return .scheduler(.assigned(instance(["a", "b"][Int(random.next() % 2)]), prefill: random.next() % 3 == 0 ? prefill("p", .vllm) : nil))
                case 1: return .scheduler(random.next() % 2 == 0 ? .wait(retryAfter: .milliseconds(50)) : .unavailable("down"))
                case 2: return .queueJoined(admitted: random.next() % 3 != 0)
                case 3: return .turn
                case 4: return .fallbackPicked(instance("f"), tableKnowsModel: true)
                case 5: return .connected(leg)
                case 6: return .head(leg, status: [200, 200, 500][Int(random.next() % 3)], eventStream: random.next() % 2 == 0)
                case 7, 8: return .bytes(leg)
                case 9: return .ended(leg)
                case 10: return .failed(leg, .cut("reset"))
                case 11: return random.next() % 2 == 0 ? .streamComplete : .timer
                default: return .timer
                }
            }
            check(t.feed(.start), t.drive.now)
            for _ in 0..<(1 + Int(random.next() % 40)) where !t.drive.machine.isDone {
                check(t.feed(randomEvent(), after: .milliseconds(Int64(random.next() % 300))), t.drive.now)
            }
            check(t.feed(.clientGone), t.drive.now)
            #expect(t.drive.machine.isDone)
            #expect(open.isEmpty && t.plan.openSpans.isEmpty, "seed \(seed): still open \(open.keys)")
            #expect(problems.isEmpty, "seed \(seed): \(problems)")
        }
    }
}
