import EngineModel
import Testing

/// vLLM's `--scheduling-policy priority` in the simulated core: the waiting queue by (priority,
/// arrival), and the preempted request the one of the highest value, latest arrived.
@Suite struct PriorityPolicyTests {
    private func driver(_ profile: EngineProfile, _ policy: EngineCore.SchedulingPolicy) throws -> Driver {
        var driver = try Driver(profile)
        driver.core = try EngineCore(profile: profile, policy: policy)
        return driver
    }

    private func submit(_ driver: inout Driver, seed: UInt32, prompt: Int = 40, maxTokens: Int, priority: Int) throws -> EngineRequestID {
        let id = try driver.core.submit(
            GenerationRequest(
                promptTokens: randomPrompt(prompt, seed: seed), maxTokens: maxTokens, ignoreEOS: true, seed: UInt64(seed), priority: priority))
        driver.submittedAt[id] = driver.now
        return id
    }

    /// One sequence at a time: the order of first tokens is the order requests leave the queue.
    private func firstTokenOrder(_ policy: EngineCore.SchedulingPolicy) throws -> [Int] {
        var profile = EngineProfile.tiny
        profile.maxRunningSequences = 1
        var driver = try driver(profile, policy)
        let priorities = [5, 5, 0, 5, -1]
        let ids = try priorities.enumerated().map { try submit(&driver, seed: UInt32($0.offset), maxTokens: 3, priority: $0.element) }
        driver.runUntilIdle()
        return ids.sorted { driver.firstToken[$0]! < driver.firstToken[$1]! }.map { ids.firstIndex(of: $0)! }
    }

    @Test func aLowerValueLeavesTheQueueFirstAndEqualValuesKeepArrivalOrder() throws {
        // All arrive before the first step: -1, then 0, then the three 5s in arrival order.
        #expect(try firstTokenOrder(.priority) == [4, 2, 0, 1, 3])
        #expect(try firstTokenOrder(.fcfs) == [0, 1, 2, 3, 4], "FCFS ignores the priority")
    }

    /// Two sequences that outgrow the cache together: one must be preempted and recomputed.
    private func outgrow(_ policy: EngineCore.SchedulingPolicy) throws -> (driver: Driver, low: EngineRequestID, high: EngineRequestID) {
        var profile = EngineProfile.tiny
        profile.kvBlocks = 64  // 1,024 tokens; the two grow to 1,200
        profile.stepTokenBudget = 512
        profile.maxModelLength = 1000
        var driver = try driver(profile, policy)
        let low = try submit(&driver, seed: 1, prompt: 200, maxTokens: 400, priority: 1)
        // `low` is admitted a step ahead: it runs first in every step's batch, so under
        // `priority` the victim is one already given its tokens in the step (they are refunded).
        driver.runUntilIdle(limit: 1)
        let high = try submit(&driver, seed: 2, prompt: 200, maxTokens: 400, priority: 0)
        driver.runUntilIdle()
        #expect(driver.core.counters.preemptions > 0)
        for id in [low, high] { #expect(driver.tokens[id]?.count == 400) }
        #expect(driver.core.cache.freeCount == 64)
        return (driver, low, high)
    }

    @Test func theLowerPriorityIsPreemptedEvenWhenItWasAdmittedFirst() throws {
        let byPriority = try outgrow(.priority)
        #expect(byPriority.driver.finished[byPriority.high]!.2 < byPriority.driver.finished[byPriority.low]!.2)
        // FCFS preempts the latest admitted: the high-priority one, admitted second.
        let fcfs = try outgrow(.fcfs)
        #expect(fcfs.driver.finished[fcfs.low]!.2 < fcfs.driver.finished[fcfs.high]!.2)
    }

    @Test func preemptionDoesNotChangeAnAnswer() throws {
        let run = try outgrow(.priority)
        for (id, seed) in [(run.low, UInt32(1)), (run.high, UInt32(2))] {
            var alone = try driver(run.driver.core.profile, .priority)
            let single = try submit(&alone, seed: seed, prompt: 200, maxTokens: 400, priority: 0)
            alone.runUntilIdle()
            #expect(alone.tokens[single] == run.driver.tokens[id])
        }
    }
}
