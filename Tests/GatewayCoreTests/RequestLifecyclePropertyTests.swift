import GatewayCore
import Seeded
import Testing

/// Random event sequences, as a shell (and worse: events out of turn) could feed them. Whatever
/// the order, every slot taken is released exactly once, nothing is retried or answered again
/// once a byte reached the client, a queue place is given back once, and `done` comes last.
@Suite struct RequestLifecyclePropertyTests {
    private struct Checker {
        var random: SplitMix64
        var machine: RequestLifecycle
        var now: Moment = .zero
        /// (leg, instance) of every slot taken, and of every slot released.
        var taken: [String: Int] = [:]
        var released: [String: Int] = [:]
        var schedulerCallOpen = false
        var joinOpen = false
        var admitted = 0
        /// Not yet started, admitted or refused by flow control.
        var fresh = true
        var left = 0
        var answered = false
        var streaming = false
        var errorEvents = 0
        var doneCount = 0
        var problems: [String] = []
        var armed: Moment?

        init(seed: UInt64) {
            random = SplitMix64(seed: seed)
            var configuration = LifecycleConfiguration()
            configuration.retryCount = Int(random.next() % 4)
            configuration.waitScheduleTimeout = .milliseconds(Int64(random.next() % 2_000))
            configuration.connectTimeout = .milliseconds(200)
            configuration.firstTokenTimeout = .milliseconds(700)
            configuration.streamIdleTimeout = .milliseconds(500)
            configuration.requestTimeout = .seconds(5)
            configuration.handoffPatience = .milliseconds(300)
            let request = LifecycleRequest(model: "m", stream: random.next() % 2 == 0, splittable: random.next() % 4 != 0)
            machine = RequestLifecycle(request: request, configuration: configuration)
        }

        mutating func pick<T>(_ options: [T]) -> T { options[Int(random.next() % UInt64(options.count))] }

        mutating func randomEvent() -> LifecycleEvent {
            let leg: Leg = random.next() % 2 == 0 ? .answer : .prefill
            let instances = ["a", "b", "c"]
            switch random.next() % 16 {
            case 0:
                if random.next() % 4 == 0 { return .scheduler(.reused(instance(pick(instances)))) }
                let flow: HandoffFlow? = pick([nil, nil, .vllm, .sglang])
                return .scheduler(.assigned(instance(pick(instances)), prefill: flow.map { prefill(pick(["p1", "p2"]), $0) }))
            case 1: return .scheduler(.wait(retryAfter: .milliseconds(Int64(random.next() % 300))))
            case 2: return .scheduler(pick([.noInstance("none"), .noneUp("down"), .unavailable("down"), .late("slow"), .hold(retryAfter: .milliseconds(20))]))
            case 3: return .fallbackPicked(random.next() % 3 == 0 ? nil : instance(pick(instances)), tableKnowsModel: random.next() % 2 == 0)
            case 4: return .queueJoined(admitted: random.next() % 4 != 0)
            case 5: return .turn
            case 6, 7: return .timer
            case 8: return .connected(leg)
            case 9: return .head(leg, status: pick([200, 200, 200, 400, 429, 500, 503]), eventStream: random.next() % 2 == 0)
            case 10, 11: return .bytes(leg)
            case 12: return .ended(leg)
            case 13: return .failed(leg, pick([.unreachable("x"), .cut("y"), .refused(status: 502), .idleTimedOut]))
            case 14:
                switch random.next() % 8 {
                case 0: return .clientGone
                case 1, 2: return .streamComplete
                default: return .clientBackPressure(paused: random.next() % 2 == 0)
                }
            default:
                switch random.next() % 8 {
                case 0: return .startQueued
                case 1: return .refused(.limitReached(tenant: "t", kind: "tokens", limit: 10, retryAfterSeconds: 1))
                case 2: return .shed
                case 3, 4, 5: return .start
                default: return .timer
                }
            }
        }

        @discardableResult
        mutating func feed(_ event: LifecycleEvent) -> [LifecycleDirective] {
            // Time moves on; now and then straight to the armed timer, as a real one would fire.
            if event == .timer, let armed, random.next() % 2 == 0 {
                now = max(now, armed)
            } else {
                now += .milliseconds(Int64(random.next() % 120))
            }
            // Slots are taken when an assignment answers an open scheduler call (the only time a
            // real shell feeds one); an assignment out of turn must be ignored.
            if case .scheduler(let answer) = event, schedulerCallOpen {
                schedulerCallOpen = false
                if case .assigned(let chosen, let pair) = answer {
                    taken["answer:\(chosen.id)", default: 0] += 1
                    if let pair { taken["prefill:\(pair.id)", default: 0] += 1 }
                }
                if case .reused(let chosen) = answer { taken["answer:\(chosen.id)", default: 0] += 1 }
            }
            if case .queueJoined(let yes) = event, joinOpen {
                joinOpen = false
                if yes { admitted += 1 }
            }
            if fresh, !machine.isDone, [.start, .startQueued].contains(event) || { if case .refused = event { true } else { false } }() {
                fresh = false
                if event == .startQueued { admitted += 1 }
            }
            let wasDone = machine.isDone
            let out = machine.handle(event, now: now)
            if wasDone, !out.isEmpty { problems.append("directives after done: \(out)") }
            for directive in out { check(directive) }
            return out
        }

        mutating func check(_ directive: LifecycleDirective) {
            if doneCount > 0 { problems.append("\(directive) after done") }
            switch directive {
            case .askScheduler, .pickFallback, .connect, .joinQueue:
                if answered { problems.append("\(directive) after the answer began") }
                if case .askScheduler = directive { schedulerCallOpen = true }
                if case .joinQueue = directive { joinOpen = true }
            case .respond, .startStream, .answerError:
                if answered { problems.append("a second answer: \(directive)") }
                answered = true
                if case .startStream = directive { streaming = true }
            case .endStreamWithError, .endStream:
                errorEvents += 1
                if !streaming || errorEvents > 1 { problems.append("a stream ended twice, or one never started") }
            case .release(let slot, _, _):
                let key = "\(slot.leg == .answer ? "answer" : "prefill"):\(slot.instanceID)"
                released[key, default: 0] += 1
                if released[key]! > taken[key, default: 0] { problems.append("released \(key) more often than taken") }
            case .leaveQueue:
                left += 1
                if left > admitted { problems.append("left the queue more often than admitted") }
            case .setTimer(let at):
                armed = at
            case .done:
                doneCount += 1
            default:
                break
            }
        }
    }

    @Test func everySequenceReleasesEverySlotOnceAndAnswersOnce() {
        var finishedByThemselves = 0
        for seed in UInt64(1)...4_000 {
            var checker = Checker(seed: seed)
            // Flow control sends most on at once, queues some, refuses a few.
            checker.feed(checker.pick([.start, .start, .start, .startQueued, .refused(.shed())]))
            let length = 1 + Int(checker.random.next() % 40)
            for _ in 0..<length where !checker.machine.isDone { checker.feed(checker.randomEvent()) }
            if checker.machine.isDone { finishedByThemselves += 1 }
            // However it stands, a client leaving ends it.
            checker.feed(.clientGone)
            #expect(checker.machine.isDone, "seed \(seed)")
            #expect(checker.doneCount == 1, "seed \(seed): done \(checker.doneCount) times")
            #expect(checker.taken == checker.released, "seed \(seed): taken \(checker.taken), released \(checker.released)")
            #expect(checker.left == checker.admitted, "seed \(seed): admitted \(checker.admitted), left \(checker.left)")
            #expect(checker.problems.isEmpty, "seed \(seed): \(checker.problems)")
        }
        // The generator reaches real endings too, not only the client leaving.
        #expect(finishedByThemselves > 400)
    }

    @Test func aShellThatFollowsTheDirectivesAlwaysReachesAnEnd() {
        // A well-behaved world: events only answer what was asked; the request must end by itself.
        for seed in UInt64(1)...2_000 {
            var checker = Checker(seed: seed)
            var pending: [LifecycleEvent] = []
            var out = checker.machine.handle(.start, now: .zero)
            for directive in out { checker.check(directive) }
            var steps = 0
            while !checker.machine.isDone, steps < 200 {
                steps += 1
                for directive in out { pending += world(directive, &checker) }
                if pending.isEmpty { pending = [.timer] }
                let event = pending.remove(at: Int(checker.random.next() % UInt64(pending.count)))
                out = checker.feed(event)
            }
            #expect(checker.machine.isDone, "seed \(seed) did not end in 200 steps")
            #expect(checker.taken == checker.released, "seed \(seed): taken \(checker.taken), released \(checker.released)")
            #expect(checker.problems.isEmpty, "seed \(seed): \(checker.problems)")
        }
    }

    /// What a world answers to a directive (one or more future events).
    private func world(_ directive: LifecycleDirective, _ checker: inout Checker) -> [LifecycleEvent] {
        switch directive {
        case .askScheduler:
            let flow: HandoffFlow? = checker.pick([nil, nil, .vllm, .sglang])
            let assigned = ScheduleAnswer.assigned(instance(checker.pick(["a", "b", "c"])), prefill: flow.map { prefill("p1", $0) })
            let reused = ScheduleAnswer.reused(instance(checker.pick(["a", "b", "c"])))
            return [.scheduler(checker.pick([assigned, assigned, assigned, reused, .wait(retryAfter: .milliseconds(50)), .unavailable("down"), .late("slow"), .noInstance("x"), .noneUp("x"), .hold(retryAfter: .milliseconds(20))]))]
        case .pickFallback: return [.fallbackPicked(checker.random.next() % 4 == 0 ? nil : instance("f"), tableKnowsModel: true)]
        case .joinQueue: return [.queueJoined(admitted: checker.random.next() % 5 != 0)]
        case .waitForTurn: return checker.pick([[.turn], [.turn], [.shed], []])
        case .connect(let leg, _, _, _):
            let status = checker.pick([200, 200, 200, 400, 503])
            let streamed = leg == .answer && checker.machine.request.stream
            let ending: LifecycleEvent = checker.random.next() % 6 == 0 ? .failed(leg, .cut("reset")) : .ended(leg)
            return [.connected(leg), .head(leg, status: status, eventStream: streamed)] + (streamed ? [.bytes(leg), .bytes(leg)] : []) + [ending]
        default: return []
        }
    }
}
