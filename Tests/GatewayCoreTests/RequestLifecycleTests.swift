import GatewayCore
import Testing

/// Drives one lifecycle by hand, keeping every directive it returned.
struct Drive {
    var machine: RequestLifecycle
    var now: Moment = .zero
    var all: [LifecycleDirective] = []

    init(stream: Bool = true, splittable: Bool = true, configure: (inout LifecycleConfiguration) -> Void = { _ in }) {
        var configuration = LifecycleConfiguration()
        configure(&configuration)
        machine = RequestLifecycle(request: LifecycleRequest(model: "m", stream: stream, splittable: splittable), configuration: configuration)
    }

    @discardableResult
    mutating func feed(_ event: LifecycleEvent, after: Duration = .milliseconds(1)) -> [LifecycleDirective] {
        now += after
        let out = machine.handle(event, now: now)
        all += out
        return out
    }

    var releases: [(Slot, SlotOutcome)] {
        all.compactMap { if case .release(let slot, let outcome, _) = $0 { (slot, outcome) } else { nil } }
    }
    var asked: [[String]] { all.compactMap { if case .askScheduler(let exclude) = $0 { exclude } else { nil } } }
    var connects: [(Leg, String, LegBody)] {
        all.compactMap { if case .connect(let leg, let instance, let body, _) = $0 { (leg, instance.id, body) } else { nil } }
    }
    var answerErrors: [OpenAIError] { all.compactMap { if case .answerError(let error) = $0 { error } else { nil } } }

    /// A request that asked, was told to wait, and joined the queue (`timeout`: its time to live).
    static func queued(timeout: Duration = LifecycleConfiguration().waitScheduleTimeout) -> Drive {
        var d = Drive { $0.waitScheduleTimeout = timeout }
        d.feed(.start)
        d.feed(.scheduler(.wait(retryAfter: .milliseconds(10))))
        d.feed(.queueJoined(admitted: true))
        return d
    }
}

func instance(_ id: String) -> InstanceRef { InstanceRef(id: id, endpointURL: "http://127.0.0.1:1/\(id)", model: "m", isUp: true) }
func prefill(_ id: String, _ flow: HandoffFlow) -> PrefillTarget {
    PrefillTarget(id: id, endpointURL: "http://127.0.0.1:2/\(id)", flow: flow, bootstrapPort: 8998)
}

@Suite struct RequestLifecyclePathTests {
    @Test func aStreamIsRelayedAndItsSlotReleasedOnceWithUsage() {
        var d = Drive()
        #expect(d.feed(.start) == [.askScheduler(exclude: [])])
        let routed = d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(routed.contains(.connect(.answer, instance("a"), body: .client, attempt: 0)))
        d.feed(.connected(.answer))
        #expect(!d.feed(.head(.answer, status: 200, eventStream: true)).contains { if case .startStream = $0 { true } else { false } })
        #expect(d.feed(.bytes(.answer)).contains(.startStream(.answer, AnswerSource(instanceID: "a", route: .scheduled))))
        #expect(d.feed(.bytes(.answer)).isEmpty)
        let end = d.feed(.ended(.answer))
        #expect(end.contains(.release(Slot(attempt: 0, leg: .answer, instanceID: "a"), .ok, withUsage: true)))
        #expect(end.last == .done && d.machine.isDone)
        #expect(d.releases.count == 1)
        #expect(d.feed(.clientGone).isEmpty)
    }

    /// A conversation's next turn sent under the leader's reuse grant: the same path as an
    /// assignment, under its own route, and its slot (booked by the leader from the gateway's
    /// notice) is released once.
    @Test func aReusedTurnIsRelayedUnderItsRouteAndReleasesItsSlot() {
        var d = Drive()
        d.feed(.start)
        let routed = d.feed(.scheduler(.reused(instance("a"))))
        #expect(routed.contains(.connect(.answer, instance("a"), body: .client, attempt: 0)))
        #expect(routed.contains { if case .count(.routed(.reused, _)) = $0 { true } else { false } })
        d.feed(.connected(.answer))
        d.feed(.head(.answer, status: 200, eventStream: true))
        #expect(d.feed(.bytes(.answer)).contains(.startStream(.answer, AnswerSource(instanceID: "a", route: .reused))))
        let end = d.feed(.ended(.answer))
        #expect(end.contains(.release(Slot(attempt: 0, leg: .answer, instanceID: "a"), .ok, withUsage: true)))
        #expect(d.releases.count == 1 && end.last == .done)
    }

    /// The instance a grant named refuses: the retry asks the leader, excluding it.
    @Test func aReusedTurnRefusedIsRetriedThroughTheLeader() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.reused(instance("a"))))
        d.feed(.head(.answer, status: 503, eventStream: false))
        #expect(d.asked == [[], ["a"]])
        #expect(d.releases.map(\.1) == [.engineError])
        d.feed(.scheduler(.assigned(instance("b"), prefill: nil)))
        #expect(d.connects.map(\.1) == ["a", "b"])
    }

    @Test func anUnstreamedAnswerIsSentWhole() {
        var d = Drive(stream: false)
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.head(.answer, status: 200, eventStream: false))
        let out = d.feed(.ended(.answer))
        #expect(out.first == .respond(.answer, AnswerSource(instanceID: "a", route: .scheduled)))
        #expect(d.releases.map(\.1) == [.ok] && out.last == .done)
    }

    @Test func anEngine4xxGoesToTheClientAndIsNotAnEngineFailure() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.head(.answer, status: 400, eventStream: false))
        let out = d.feed(.ended(.answer))
        #expect(out.contains(.respond(.answer, AnswerSource(instanceID: "a", route: .scheduled))))
        #expect(d.releases.map(\.1) == [.clientError] && !d.all.contains(.count(.retried)))
    }

    @Test func aRefusalIsRetriedElsewhereAndTheRefuserExcluded() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        let out = d.feed(.head(.answer, status: 503, eventStream: false))
        #expect(out.contains(.cancel(.answer)) && out.contains(.markFailed(instanceID: "a")) && out.contains(.count(.retried)))
        #expect(out.last == .askScheduler(exclude: ["a"]))
        d.feed(.scheduler(.assigned(instance("b"), prefill: nil)))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        d.feed(.ended(.answer))
        #expect(d.releases.map(\.1) == [.engineError, .ok])
        #expect(d.releases.map(\.0.instanceID) == ["a", "b"])
    }

    @Test func afterEveryAttemptFailsTheClientGetsOne502() {
        var d = Drive { $0.retryCount = 1 }
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.failed(.answer, .unreachable("refused")))
        d.feed(.scheduler(.assigned(instance("b"), prefill: nil)))
        let out = d.feed(.failed(.answer, .unreachable("refused")))
        #expect(out.contains(.count(.gaveUp)))
        #expect(d.answerErrors.count == 1 && d.answerErrors[0].status == 502 && d.answerErrors[0].message.contains("after 2 attempts"))
        #expect(d.asked == [[], ["a"]] && d.machine.isDone)
    }

    @Test func fallbackRoutesHoldNoSlots() {
        var d = Drive()
        d.feed(.start)
        #expect(d.feed(.scheduler(.unavailable("down"))) == [.pickFallback(exclude: [])])
        d.feed(.fallbackPicked(instance("a"), tableKnowsModel: true))
        d.feed(.failed(.answer, .refused(status: 500)))
        d.feed(.scheduler(.unavailable("down")))
        d.feed(.fallbackPicked(instance("b"), tableKnowsModel: true))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        d.feed(.ended(.answer))
        #expect(d.releases.isEmpty && d.machine.isDone)
        #expect(d.all.contains(.startStream(.answer, AnswerSource(instanceID: "b", route: .fallback))))
    }

    @Test func fallbackWithNothingLeftTellsUnknownModelsFromADownTrio() {
        var unknown = Drive()
        unknown.feed(.start)
        unknown.feed(.scheduler(.unavailable("down")))
        unknown.feed(.fallbackPicked(nil, tableKnowsModel: false))
        #expect(unknown.answerErrors.map(\.status) == [404])
        var known = Drive()
        known.feed(.start)
        known.feed(.scheduler(.unavailable("down")))
        known.feed(.fallbackPicked(nil, tableKnowsModel: true))
        #expect(known.answerErrors.map(\.status) == [503])
    }

    @Test func aWaitingRequestAsksAgainOnlyWhenTheQueueWakesItAndLeavesTheQueueOnce() {
        var d = Drive { $0.waitScheduleTimeout = .seconds(30) }
        d.feed(.start)
        #expect(d.feed(.scheduler(.wait(retryAfter: .milliseconds(500)))) == [.joinQueue])
        // In the queue: only its time to live is due.
        #expect(d.feed(.queueJoined(admitted: true)) == [.setTimer(at: d.now + .seconds(30))])
        // Early: nothing is due; the timer is asked for again.
        #expect(d.feed(.timer, after: .milliseconds(500)) == [.setTimer(at: d.now - .milliseconds(500) + .seconds(30))])
        #expect(d.feed(.turn) == [.askScheduler(exclude: [])])
        // Told to wait again: back to its place.
        #expect(d.feed(.scheduler(.wait(retryAfter: .milliseconds(100)))) == [.waitForTurn])
        #expect(d.feed(.turn) == [.askScheduler(exclude: [])])
        let routed = d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(routed.first == .leaveQueue)
        d.feed(.clientGone)
        #expect(d.all.filter { $0 == .leaveQueue }.count == 1)
    }

    /// The leader answered others but not this call in time: a request that waited in the
    /// queue (engines were full when it was last told) goes back to its place rather than to an
    /// engine picked blind; one that never waited is routed by fallback, as without a leader.
    @Test func aLateAnswerPutsAQueuedRequestBackInItsPlaceAndRoutesAnyOtherByFallback() {
        var queued = Drive.queued()
        queued.feed(.turn)
        #expect(queued.feed(.scheduler(.late("call timed out"))) == [.waitForTurn])
        #expect(queued.feed(.turn) == [.askScheduler(exclude: [])])
        let routed = queued.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(routed.first == .leaveQueue && !queued.all.contains(.pickFallback(exclude: [])))
        // Past its time to live, a late answer ends its wait as a wait answer would.
        var expired = Drive.queued(timeout: .milliseconds(300))
        expired.feed(.turn)
        expired.feed(.scheduler(.late("call timed out")), after: .milliseconds(400))
        #expect(expired.answerErrors.map(\.status) == [503] && expired.machine.isDone)
        var fresh = Drive()
        fresh.feed(.start)
        #expect(fresh.feed(.scheduler(.late("call timed out"))) == [.pickFallback(exclude: [])])
        // Late twice in a row (a leader stuck while its connection answers): routed by fallback,
        // not kept in the queue until its time to live runs out.
        var stuck = Drive.queued()
        stuck.feed(.turn)
        #expect(stuck.feed(.scheduler(.late("call timed out"))) == [.waitForTurn])
        stuck.feed(.turn)
        #expect(stuck.feed(.scheduler(.late("call timed out"))) == [.pickFallback(exclude: [])])
        let sent = stuck.feed(.fallbackPicked(instance("a"), tableKnowsModel: true))
        #expect(sent.first == .leaveQueue && stuck.answerErrors.isEmpty)
    }

    /// A request that waited long in the queue and is then held is bounded from its first hold,
    /// not from its arrival.
    @Test func holdsAreBoundedFromTheFirstHoldNotFromTheArrival() {
        var d = Drive.queued()
        d.feed(.turn, after: .seconds(20))
        let held = d.feed(.scheduler(.hold(retryAfter: .milliseconds(50))))
        #expect(held.contains(.setTimer(at: d.now + .milliseconds(50))) && d.answerErrors.isEmpty)
        d.feed(.timer, after: .seconds(15))
        d.feed(.scheduler(.hold(retryAfter: .milliseconds(50))))
        #expect(d.answerErrors.map(\.status) == [503] && d.machine.isDone)
    }

    @Test func aRequestAdmittedBehindOthersWaitsForItsTurnUntilItsClassesTimeToLive() {
        var d = Drive()
        d.machine = RequestLifecycle(request: LifecycleRequest(model: "m", stream: true, queueTimeout: .seconds(5)), configuration: LifecycleConfiguration())
        #expect(d.feed(.startQueued) == [.setTimer(at: d.now + .seconds(5))])
        #expect(d.feed(.timer, after: .seconds(4)) == [.setTimer(at: d.now - .seconds(4) + .seconds(5))])
        let expired = d.feed(.timer, after: .seconds(1))
        #expect(d.answerErrors.map(\.status) == [503] && d.answerErrors.first?.message.contains("5.0 s") == true)
        #expect(expired.filter { $0 == .leaveQueue }.count == 1 && expired.last == .done)
        #expect(d.feed(.turn).isEmpty && d.asked.isEmpty)
    }

    @Test func aRefusedRequestIsAnsweredAtOnceAndAShedOneLeavesTheQueue() {
        var refused = Drive()
        let limit = OpenAIError.limitReached(tenant: "t", kind: "requests", limit: 60, retryAfterSeconds: 2)
        #expect(refused.feed(.refused(limit)) == [.answerError(limit), .done])
        var shed = Drive()
        shed.feed(.startQueued)
        let out = shed.feed(.shed)
        #expect(out.contains(.count(.queueRejected)) && out.contains(.leaveQueue) && out.last == .done)
        #expect(shed.answerErrors.map(\.code) == ["request_shed"] && shed.answerErrors.first?.retryAfterSeconds == 1)
        // Not waiting: a shed signal means nothing.
        var running = Drive()
        running.feed(.start)
        running.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(running.feed(.shed).isEmpty)
    }

    @Test func aHeldRequestAsksAgainWhenItsTimerFiresWithoutJoiningTheQueue() {
        var d = Drive()
        d.feed(.start)
        // The leader holds it: a timer, no queue place, no slot.
        #expect(d.feed(.scheduler(.hold(retryAfter: .milliseconds(50)))) == [.setTimer(at: d.now + .milliseconds(50))])
        #expect(d.feed(.timer, after: .milliseconds(20)).allSatisfy { if case .setTimer = $0 { true } else { false } })
        #expect(d.feed(.timer, after: .milliseconds(30)) == [.askScheduler(exclude: [])])
        d.feed(.scheduler(.hold(retryAfter: .milliseconds(50))))
        #expect(d.feed(.timer, after: .milliseconds(50)) == [.askScheduler(exclude: [])])
        let routed = d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(routed.contains(.connect(.answer, instance("a"), body: .client, attempt: 0)))
        #expect(!d.all.contains(.joinQueue) && !d.all.contains(.leaveQueue))
    }

    @Test func aClientLeavingWhileHeldGivesBackNothingItDidNotTake() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.hold(retryAfter: .milliseconds(50))))
        let gone = d.feed(.clientGone)
        #expect(gone.contains(.count(.clientCancelled)) && gone.last == .done)
        #expect(d.releases.isEmpty && !d.all.contains(.leaveQueue))
        #expect(d.feed(.timer, after: .milliseconds(100)).isEmpty)
    }

    @Test func aGatewayBoundsHoldsBeyondAnyTheLeaderMayGive() {
        // Not by the wait queue's timeout: holds are the leader's to end, and a short queue
        // timeout must not turn them into errors.
        var d = Drive { $0.waitScheduleTimeout = .zero }
        d.feed(.start)
        d.feed(.scheduler(.hold(retryAfter: .milliseconds(200))))
        d.feed(.timer, after: .milliseconds(200))
        d.feed(.scheduler(.hold(retryAfter: .milliseconds(200))))
        #expect(d.answerErrors.isEmpty)
        d.feed(.timer, after: .seconds(15))
        d.feed(.scheduler(.hold(retryAfter: .milliseconds(200))))
        #expect(d.answerErrors.map(\.status) == [503] && d.machine.isDone)
        // A request woken from the queue and held asks again when the hold ends (no capacity
        // signal follows a hold), and gives its queue place back once.
        var queued = Drive.queued()
        queued.feed(.turn)
        let held = queued.feed(.scheduler(.hold(retryAfter: .milliseconds(10))))
        #expect(!held.contains(.waitForTurn) && held.contains { if case .setTimer = $0 { true } else { false } })
        #expect(queued.feed(.timer, after: .milliseconds(10)) == [.askScheduler(exclude: [])])
        queued.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(queued.all.filter { $0 == .leaveQueue }.count == 1)
    }

    @Test func aFullQueueIs429AndAnExpiredWaitIs503() {
        var full = Drive()
        full.feed(.start)
        full.feed(.scheduler(.wait(retryAfter: .milliseconds(10))))
        full.feed(.queueJoined(admitted: false))
        #expect(full.answerErrors.map(\.status) == [429] && !full.all.contains(.leaveQueue))
        var late = Drive.queued(timeout: .milliseconds(300))
        late.feed(.turn)
        late.feed(.scheduler(.wait(retryAfter: .milliseconds(10))), after: .milliseconds(400))
        #expect(late.answerErrors.map(\.status) == [503] && late.all.filter { $0 == .leaveQueue }.count == 1)
    }

    @Test func anEngineDyingMidStreamEndsItWithOneErrorEventAndNoRetry() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        let out = d.feed(.failed(.answer, .cut("reset")))
        #expect(out.contains { if case .endStreamWithError(let error) = $0 { error.message.contains("failed while answering") } else { false } })
        #expect(d.releases.map(\.1) == [.engineError] && d.asked.count == 1 && out.last == .done)
    }

    /// The `openai` client closes its connection as soon as it reads `[DONE]`, which can be
    /// before the engine's response has ended: that is a finished request, not a cancelled one.
    @Test func aClientThatLeavesAfterTheTerminalEventFinishedItsRequest() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        d.feed(.bytes(.answer))
        #expect(d.feed(.streamComplete).allSatisfy { if case .setTimer = $0 { true } else { false } })
        let out = d.feed(.clientGone)
        #expect(out.contains(.release(Slot(attempt: 0, leg: .answer, instanceID: "a"), .ok, withUsage: true)))
        #expect(out.contains(.markSucceeded(instanceID: "a")) && out.contains(.cancel(.answer)))
        #expect(!out.contains(.count(.clientCancelled)) && !out.contains(.endStream) && out.last == .done)
        #expect(d.releases.count == 1)
    }

    @Test func aClientThatLeavesBeforeTheTerminalEventCancelledItsRequest() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        let out = d.feed(.clientGone)
        #expect(out.contains(.count(.clientCancelled)) && d.releases.map(\.1) == [.clientCancelled])
        // The terminal event only counts while a stream is relayed.
        var early = Drive()
        early.feed(.start)
        early.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        early.feed(.head(.answer, status: 200, eventStream: true))
        early.feed(.streamComplete)
        early.feed(.bytes(.answer))
        #expect(early.feed(.clientGone).contains(.count(.clientCancelled)))
    }

    @Test func aStreamCutAfterItsTerminalEventEndsCleanly() {
        // Cut, or never ended in time: the client has everything, so no error event follows `[DONE]`.
        for ending in [LifecycleEvent.failed(.answer, .cut("reset")), .timer] {
            var d = Drive { $0.streamIdleTimeout = .seconds(2) }
            d.feed(.start)
            d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
            d.feed(.head(.answer, status: 200, eventStream: true))
            d.feed(.bytes(.answer))
            d.feed(.streamComplete)
            let out = d.feed(ending, after: .seconds(3))
            #expect(out.contains(.endStream) && out.last == .done, "\(ending)")
            #expect(!out.contains { if case .endStreamWithError = $0 { true } else { false } }, "\(ending)")
            #expect(d.releases.map(\.1) == [.ok] && !d.all.contains(.count(.upstreamError(instanceID: "a"))), "\(ending)")
        }
    }

    @Test func anEngineThatHangsAfterItsHeadersIsTimedOut() {
        // Before the first event: retried elsewhere. After it: the idle timeout ends the stream.
        var early = Drive { $0.firstTokenTimeout = .seconds(5) }
        early.feed(.start)
        early.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        early.feed(.head(.answer, status: 200, eventStream: true))
        #expect(early.feed(.timer, after: .seconds(5)).last == .askScheduler(exclude: ["a"]))
        var late = Drive { $0.streamIdleTimeout = .seconds(2) }
        late.feed(.start)
        late.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        late.feed(.head(.answer, status: 200, eventStream: true))
        late.feed(.bytes(.answer))
        late.feed(.bytes(.answer), after: .seconds(1))
        #expect(late.feed(.timer, after: .milliseconds(1500)).allSatisfy { if case .setTimer = $0 { true } else { false } })
        let out = late.feed(.timer, after: .seconds(1))
        #expect(out.contains { if case .endStreamWithError(let error) = $0 { error.message.contains("stream_idle_timeout_ms") } else { false } })
        #expect(out.contains(.cancel(.answer)) && late.machine.isDone)
    }

    @Test func aClientThatHoldsTheStreamBackIsNotTheEnginesSilence() {
        var d = Drive { $0.streamIdleTimeout = .seconds(2) }
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        d.feed(.clientBackPressure(paused: true))
        // Long past the idle timeout while the client does not read: nothing ends.
        #expect(!d.feed(.timer, after: .seconds(30)).contains { if case .endStreamWithError = $0 { true } else { false } })
        d.feed(.clientBackPressure(paused: false))
        #expect(!d.feed(.timer, after: .seconds(1)).contains { if case .endStreamWithError = $0 { true } else { false } })
        // Reading again, the engine's silence counts from the resumption.
        #expect(d.feed(.timer, after: .seconds(1)).contains { if case .endStreamWithError = $0 { true } else { false } })
    }

    @Test func anUnstreamedPrefillLegIsNotHeldToTheStreamedHeadersTimeout() {
        // vLLM's prefill leg is unstreamed: its head comes with the computed prompt, which may
        // take longer than response_headers_timeout_ms on a long prompt.
        var d = Drive { $0.responseHeadersTimeout = .seconds(30) }
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .vllm))))
        d.feed(.connected(.prefill))
        #expect(!d.feed(.timer, after: .seconds(45)).contains(.cancel(.prefill)))
        d.feed(.head(.prefill, status: 200, eventStream: false))
        #expect(d.feed(.ended(.prefill)).contains(.connect(.answer, instance("d"), body: .vllmDecode, attempt: 0)))
    }

    @Test func aConnectThatHangsIsRetriedAfterTheConnectTimeout() {
        var d = Drive { $0.connectTimeout = .seconds(2) }
        d.feed(.start)
        let out = d.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        #expect(out.contains(.setTimer(at: d.now + .seconds(2))))
        #expect(d.feed(.timer, after: .seconds(2)).last == .askScheduler(exclude: ["a"]))
    }

    @Test func aClientLeavingAtAnyStageCancelsAndReleasesEverything() {
        let stages: [[LifecycleEvent]] = [
            [.scheduler(.wait(retryAfter: .milliseconds(10))), .queueJoined(admitted: true)],  // queued
            [],  // scheduling
            [.scheduler(.assigned(instance("a"), prefill: nil))],  // connecting
            [.scheduler(.assigned(instance("a"), prefill: nil)), .connected(.answer), .head(.answer, status: 200, eventStream: false)],
            [.scheduler(.assigned(instance("a"), prefill: nil)), .head(.answer, status: 200, eventStream: true), .bytes(.answer)],
            [.scheduler(.assigned(instance("a"), prefill: prefill("p", .vllm)))],  // prefilling
        ]
        for (index, events) in stages.enumerated() {
            var d = Drive()
            d.feed(.start)
            for event in events { d.feed(event) }
            let out = d.feed(.clientGone)
            #expect(out.last == .done, "stage \(index)")
            #expect(d.releases.allSatisfy { $0.1 == .clientCancelled }, "stage \(index)")
            let taken = index >= 2 ? (index == 5 ? 2 : 1) : 0
            #expect(d.releases.count == taken, "stage \(index)")
            if index >= 2 { #expect(out.contains(.cancel(index == 5 ? .prefill : .answer)), "stage \(index)") }
            if index == 0 { #expect(out.contains(.leaveQueue)) }
            #expect(d.all.filter { if case .endStreamWithError = $0 { true } else { false } }.isEmpty)
        }
    }

    @Test func vllmPrefillsThenDecodesNamingThePrefillInstance() {
        var d = Drive()
        d.feed(.start)
        let first = d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .vllm))))
        #expect(first.contains(.connect(.prefill, InstanceRef(id: "p", endpointURL: "http://127.0.0.1:2/p", model: "m", isUp: true, isPrefillOnly: true), body: .vllmPrefill, attempt: 0)))
        #expect(!d.connects.contains { $0.0 == .answer })
        d.feed(.head(.prefill, status: 200, eventStream: false))
        let decoded = d.feed(.ended(.prefill))
        #expect(decoded.contains(.release(Slot(attempt: 0, leg: .prefill, instanceID: "p"), .ok, withUsage: false)))
        #expect(decoded.contains(.connect(.answer, instance("d"), body: .vllmDecode, attempt: 0)))
        d.feed(.head(.answer, status: 200, eventStream: true))
        #expect(d.feed(.bytes(.answer)).contains(.startStream(.answer, AnswerSource(instanceID: "d", route: .scheduled, prefillInstanceID: "p"))))
        let end = d.feed(.ended(.answer))
        #expect(end.contains(.release(Slot(attempt: 0, leg: .answer, instanceID: "d", prefillInstanceID: "p"), .ok, withUsage: true)))
        #expect(d.all.contains(.count(.handoff(.vllm, outcome: "ok"))))
    }

    @Test func aFailedPrefillLegIsSplitAgainWithoutThatPrefillInstance() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p1", .vllm))))
        let out = d.feed(.failed(.prefill, .unreachable("refused")))
        #expect(out.contains(.release(Slot(attempt: 0, leg: .prefill, instanceID: "p1"), .engineError, withUsage: false)))
        #expect(out.contains(.release(Slot(attempt: 0, leg: .answer, instanceID: "d"), .unspecified, withUsage: false)))
        #expect(out.contains(.count(.handoff(.vllm, outcome: "prefill_failed"))) && out.last == .askScheduler(exclude: ["p1"]))
        #expect(!out.contains(.markFailed(instanceID: "d")))
    }

    @Test func aPrefill4xxIsTheClientsAnswer() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .vllm))))
        d.feed(.head(.prefill, status: 400, eventStream: false))
        let out = d.feed(.ended(.prefill))
        #expect(out.contains(.respond(.prefill, AnswerSource(instanceID: "p", route: .scheduled))))
        #expect(Set(d.releases.map { "\($0.0.instanceID):\($0.1)" }) == ["d:unspecified", "p:clientError"])
    }

    @Test func sglangSendsBothLegsAtOnceAndWaitsForThePrefillLegBeforeRelaying() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .sglang))))
        #expect(d.connects.map(\.2) == [.sglangPair, .sglangPair])
        d.feed(.head(.answer, status: 200, eventStream: true))
        #expect(!d.feed(.bytes(.answer)).contains { if case .startStream = $0 { true } else { false } })
        d.feed(.head(.prefill, status: 200, eventStream: false))
        let out = d.feed(.ended(.prefill))
        #expect(out.contains(.startStream(.answer, AnswerSource(instanceID: "d", route: .scheduled, prefillInstanceID: "p"))))
        d.feed(.ended(.answer))
        #expect(d.releases.map(\.1) == [.ok, .ok])
    }

    @Test func sglangRelaysTheDecodeAnswerWhenThePrefillLegOutlivesPatience() {
        var d = Drive { $0.handoffPatience = .seconds(2) }
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .sglang))))
        d.feed(.head(.answer, status: 200, eventStream: true))
        d.feed(.bytes(.answer))
        let out = d.feed(.timer, after: .seconds(2))
        #expect(out.contains(.cancel(.prefill)) && out.contains { if case .startStream = $0 { true } else { false } })
        #expect(d.releases.map(\.1) == [.ok])
    }

    @Test func sglangBlamesThePrefillLegWhenBothFail() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .sglang))))
        d.feed(.failed(.answer, .cut("no KV")))
        let out = d.feed(.failed(.prefill, .unreachable("refused")))
        #expect(out.contains(.markFailed(instanceID: "p")) && !out.contains(.markFailed(instanceID: "d")))
        #expect(out.last == .askScheduler(exclude: ["p"]))
    }

    @Test func anUnsplittableRequestGivesThePrefillSlotBackAndGoesWhole() {
        var d = Drive(splittable: false)
        d.feed(.start)
        let out = d.feed(.scheduler(.assigned(instance("d"), prefill: prefill("p", .vllm))))
        #expect(out.first == .release(Slot(attempt: 0, leg: .prefill, instanceID: "p"), .unspecified, withUsage: false))
        #expect(d.connects.map { "\($0.0):\($0.1):\($0.2)" } == ["answer:d:client"])
    }

    @Test func unknownModelsAndExhaustedPoolsGetClearErrors() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.noInstance("none")))
        #expect(d.answerErrors.map(\.code) == ["model_not_found"])
        var e = Drive()
        e.feed(.start)
        e.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        e.feed(.failed(.answer, .refused(status: 500)))
        e.feed(.scheduler(.noInstance("all excluded")))
        #expect(e.answerErrors.map(\.status) == [502] && e.releases.count == 1)
    }

    @Test func aServedModelWithNoInstanceUpIsARetryable503NotA404() {
        var d = Drive()
        d.feed(.start)
        d.feed(.scheduler(.noneUp("no instance of model 'tiny' is up")))
        #expect(d.answerErrors.map(\.status) == [503] && d.answerErrors.map(\.code) == ["no_instance_up"])
        #expect(d.answerErrors.first?.retryAfterSeconds == 1)
        // After an attempt failed, it is the exhausted pool's 502, as for `noInstance`.
        var e = Drive()
        e.feed(.start)
        e.feed(.scheduler(.assigned(instance("a"), prefill: nil)))
        e.feed(.failed(.answer, .refused(status: 500)))
        e.feed(.scheduler(.noneUp("every up instance already failed this request")))
        #expect(e.answerErrors.map(\.status) == [502] && e.releases.count == 1)
    }
}
