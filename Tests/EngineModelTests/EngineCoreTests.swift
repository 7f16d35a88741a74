import EngineModel
import Testing

/// Drives the core in model time: submit, step until the given requests finish, and record when
/// each first token and finish happened.
struct Driver {
    var core: EngineCore
    var now = 0.0
    var firstToken: [EngineRequestID: Double] = [:]
    var finished: [EngineRequestID: (FinishReason, TokenUsage, Double)] = [:]
    var tokens: [EngineRequestID: [UInt32]] = [:]
    var submittedAt: [EngineRequestID: Double] = [:]
    var maxWaiting = 0

    init(_ profile: EngineProfile) throws { core = try EngineCore(profile: profile) }

    mutating func submit(_ prompt: [UInt32], maxTokens: Int, ignoreEOS: Bool = true, seed: UInt64 = 1) throws -> EngineRequestID {
        let id = try core.submit(GenerationRequest(promptTokens: prompt, maxTokens: maxTokens, ignoreEOS: ignoreEOS, seed: seed))
        submittedAt[id] = now
        return id
    }

    mutating func runUntilIdle(limit: Int = 1_000_000) {
        var steps = 0
        while steps < limit, let step = core.step() {
            steps += 1
            now += step.duration
            maxWaiting = max(maxWaiting, core.waitingCount)
            for event in step.events {
                switch event {
                case .scheduled: break
                case .token(let id, let token):
                    if firstToken[id] == nil { firstToken[id] = now }
                    tokens[id, default: []].append(token)
                case .finished(let id, let reason, let usage): finished[id] = (reason, usage, now)
                }
            }
        }
    }

    func ttft(_ id: EngineRequestID) -> Double { firstToken[id]! - submittedAt[id]! }
}

func randomPrompt(_ count: Int, seed: UInt32) -> [UInt32] {
    (0..<UInt32(count)).map { ($0 &* 2_654_435_761) ^ (seed &* 40_503) }
}

@Suite struct EngineCoreTests {
    @Test func repeatedLongPromptIsCachedUntilOtherTrafficEvictsIt() throws {
        var profile = EngineProfile.tiny
        profile.prefillPerToken = 0.000_1
        var driver = try Driver(profile)
        let long = randomPrompt(1000, seed: 1)

        let first = try driver.submit(long, maxTokens: 4)
        driver.runUntilIdle()
        let second = try driver.submit(long, maxTokens: 4)
        driver.runUntilIdle()
        #expect(driver.finished[first]!.1.cachedTokens == 0)
        #expect(driver.finished[second]!.1.cachedTokens == 992)  // 62 full blocks of 16
        #expect(driver.ttft(second) < driver.ttft(first) / 3)

        // 256 blocks in all: other prompts of 1000 tokens push the freed blocks out of the queue.
        for seed in 2...6 {
            _ = try driver.submit(randomPrompt(1000, seed: UInt32(seed)), maxTokens: 4)
            driver.runUntilIdle()
        }
        let third = try driver.submit(long, maxTokens: 4)
        driver.runUntilIdle()
        #expect(driver.finished[third]!.1.cachedTokens == 0)
        #expect(driver.ttft(third) > driver.ttft(second) * 3)
        #expect(driver.core.cache.evictions > 0)
    }

    @Test func cacheHitLeavesAtLeastOneTokenToCompute() throws {
        var driver = try Driver(.tiny)
        let prompt = randomPrompt(32, seed: 3)
        _ = try driver.submit(prompt, maxTokens: 2)
        driver.runUntilIdle()
        let again = try driver.submit(prompt, maxTokens: 2)
        driver.runUntilIdle()
        #expect(driver.finished[again]!.1.cachedTokens == 16)
    }

    @Test func followUpTurnHitsThePreviousAnswer() throws {
        var driver = try Driver(.tiny)
        let prompt = randomPrompt(100, seed: 4)
        let first = try driver.submit(prompt, maxTokens: 64)
        driver.runUntilIdle()
        let history = prompt + driver.tokens[first]! + randomPrompt(20, seed: 5)
        let second = try driver.submit(history, maxTokens: 4)
        driver.runUntilIdle()
        // 100 prompt + 63 computed answer tokens are in full blocks: 160 tokens.
        #expect(driver.finished[second]!.1.cachedTokens == 160)
    }

    @Test func moreRequestsThanBlocksQueueAndWaitLonger() throws {
        var driver = try Driver(.tiny)  // 256 blocks
        var ids: [EngineRequestID] = []
        for seed in 0..<12 { ids.append(try driver.submit(randomPrompt(600, seed: UInt32(100 + seed)), maxTokens: 200)) }
        driver.runUntilIdle()
        #expect(driver.maxWaiting > 0)
        #expect(ids.allSatisfy { driver.finished[$0]?.0 == .length })
        let early = ids.prefix(3).map(driver.ttft).max()!
        let late = ids.suffix(3).map(driver.ttft).min()!
        #expect(late > early * 5)
    }

    @Test func runningOutOfBlocksPreemptsAndRecomputesWithoutLosingTokens() throws {
        var profile = EngineProfile.tiny
        profile.kvBlocks = 64  // 1024 tokens
        profile.stepTokenBudget = 512
        profile.maxModelLength = 1000
        var driver = try Driver(profile)
        var ids: [EngineRequestID] = []
        for seed in 0..<4 { ids.append(try driver.submit(randomPrompt(100, seed: UInt32(seed)), maxTokens: 400, seed: UInt64(seed))) }
        driver.runUntilIdle()
        #expect(driver.core.counters.preemptions > 0)
        for (index, id) in ids.enumerated() {
            #expect(driver.finished[id]?.1.completionTokens == 400)
            #expect(driver.tokens[id]?.count == 400)
            var replay = try Driver(profile)
            let alone = try replay.submit(randomPrompt(100, seed: UInt32(index)), maxTokens: 400, seed: UInt64(index))
            replay.runUntilIdle()
            #expect(replay.tokens[alone] == driver.tokens[id], "preemption must not change the answer")
        }
        #expect(driver.core.cache.freeCount == 64)
    }

    @Test func outputLengthFollowsMaxTokensOrStopsNaturally() throws {
        var driver = try Driver(.tiny)
        let capped = try driver.submit(randomPrompt(10, seed: 1), maxTokens: 3, ignoreEOS: false, seed: 9)
        let natural = try driver.submit(randomPrompt(10, seed: 1), maxTokens: 1000, ignoreEOS: false, seed: 9)
        let forced = try driver.submit(randomPrompt(10, seed: 1), maxTokens: 500, ignoreEOS: true, seed: 9)
        driver.runUntilIdle()
        #expect(driver.finished[capped]!.0 == .length)
        #expect(driver.finished[capped]!.1.completionTokens == 3)
        #expect(driver.finished[natural]!.0 == .stop)
        let naturalLength = OutputPlan(seed: 9, medianLength: EngineProfile.tiny.outputMedianTokens, sigma: EngineProfile.tiny.outputSigma).naturalLength
        #expect(driver.finished[natural]!.1.completionTokens == naturalLength)
        #expect(driver.finished[forced]!.1.completionTokens == 500)
        #expect(driver.tokens[capped]! == Array(driver.tokens[natural]!.prefix(3)), "same seed, same text")
    }

    @Test func rejectsPromptsThatDoNotFitAndEmptyPrompts() throws {
        var core = try EngineCore(profile: .tiny)
        #expect(throws: EngineModelError.promptTooLong(promptTokens: 2000, maxTokens: 100, maxModelLength: 2048)) {
            try core.submit(GenerationRequest(promptTokens: randomPrompt(2000, seed: 1), maxTokens: 100, seed: 1))
        }
        #expect(throws: EngineModelError.emptyPrompt) {
            try core.submit(GenerationRequest(promptTokens: [], maxTokens: 1, seed: 1))
        }
        #expect(core.remainingContext(promptTokens: 48) == 2000)
    }

    @Test func abortFreesBlocksAndCountsAnAbort() throws {
        var driver = try Driver(.tiny)
        let id = try driver.submit(randomPrompt(300, seed: 1), maxTokens: 100)
        _ = driver.core.step()
        #expect(driver.core.cache.freeCount < 256)
        driver.core.abort(id)
        #expect(driver.core.cache.freeCount == 256)
        #expect(driver.core.counters.finished[.abort] == 1)
        #expect(!driver.core.hasWork)
    }

    @Test func stepCostFollowsTheDocumentedFormula() {
        let p = EngineProfile.qwen7bH100
        let d = p.stepDuration(prefillTokens: 1000, sequences: 10, contextTokens: 5000)
        #expect(abs(d - (0.0062 + 0.032 + 0.0006 + 0.00011)) < 1e-9)
    }

    @Test func everyBuiltInProfileIsValid() throws {
        for profile in EngineProfile.all { try profile.validate() }
        #expect(throws: EngineModelError.self) { try EngineProfile.named("nope") }
    }

    @Test func calibrationRunIsDeterministicAndSane() throws {
        let workload = CalibrationWorkload(clients: 8, requests: 40, answerTokensMedian: 50, seed: 3)
        let a = try Calibration.run(profile: .tiny, workload: workload)
        let b = try Calibration.run(profile: .tiny, workload: workload)
        #expect(a.requests == 40)
        #expect(a.duration == b.duration)
        #expect(a.timesToFirstToken.count == 40)
        #expect(a.cachedTokens > 0, "later turns hit earlier turns' blocks")
    }
}
