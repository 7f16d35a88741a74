import Routing
import SchedulerCore
import Testing

@testable import Scheduler

/// The leader's prefix holds follow the replicated policy as soon as it is set, not only once a
/// request that accepts holds has been decided under it.
@Suite struct LeaderWarmupTests {
    private func prefixCache(holdMilliseconds: Double) throws -> PolicyConfiguration {
        var policy = PolicyConfiguration()
        try policy.set("prefix_hold_ms", holdMilliseconds)
        try policy.set("prefix_hold_min_tokens", 1_024)
        return policy
    }

    @Test func theHoldsLimitsFollowEachPolicySet() throws {
        var soft = LeaderSoftState(policy: try prefixCache(holdMilliseconds: 500), seed: 1)
        #expect(soft.warmup.maxHold == 0.5 && soft.warmup.minChunks == 16)
        var roundRobin = PolicyConfiguration()
        roundRobin.name = .roundRobin
        soft.policy = roundRobin
        #expect(soft.warmup.maxHold == 0, "a policy that never holds records no warming")
        soft.policy = try prefixCache(holdMilliseconds: 0)
        #expect(soft.warmup.maxHold == 0)
        soft.policy = try prefixCache(holdMilliseconds: 1_500)
        #expect(soft.warmup.maxHold == 1.5)
    }

    /// A requester that never accepts holds (`junction bench schedule`, an older gateway) still
    /// starts warming entries that hold the requests of gateways that do.
    @Test func requestsThatAreNeverHeldStillRecordTheirWarmingPrefix() throws {
        var soft = LeaderSoftState(policy: try prefixCache(holdMilliseconds: 2_000), seed: 1)
        let now = soft.epoch + .seconds(10)
        soft.report("a", load: EngineLoad(running: 3, waiting: 0, kvUsage: 0.1), healthy: true, at: now)
        let chain = (0..<20).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        let view = soft.view(of: InstanceRecordFixture.record("a"), now: now)
        soft.warming("first", on: view, chain: chain, cachedChunks: 0, at: now)
        #expect(soft.warmup.warming["a"]?.map(\.request) == ["first"])
        let hold = soft.warmupHold("second", on: "a", chain: chain, cachedChunks: 20, acceptsHold: true, at: now + .milliseconds(5))
        #expect(hold?.warmingChunks == 20)
        #expect(soft.warmupHold("third", on: "a", chain: chain, cachedChunks: 20, acceptsHold: false, at: now + .milliseconds(5)) == nil)
    }

    /// A hold lasts no longer than computing the shared prefix again at the instance's prefill
    /// rate (the policy's 10,000 tokens a second here: 20 chunks of 64 tokens, 128 ms), except once
    /// the engine's KV cache is under pressure, where admission waits for blocks: there the
    /// follower waits for a report that shows it, up to `prefix_hold_ms`.
    @Test func aHoldIsBoundedByRecomputationUnlessTheEngineIsShortOfKVBlocks() throws {
        for (kvUsage, heldAfterASecond) in [(0.1, false), (0.95, true)] {
            var soft = LeaderSoftState(policy: try prefixCache(holdMilliseconds: 2_000), seed: 1)
            let now = soft.epoch + .seconds(10)
            soft.report("a", load: EngineLoad(running: 3, waiting: 0, kvUsage: 0.1), healthy: true, at: now)
            let chain = (0..<20).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
            soft.warming("first", on: soft.view(of: InstanceRecordFixture.record("a"), now: now), chain: chain, cachedChunks: 0, at: now)
            // The next report: two requests waiting (the first may be one of them), at this KV usage.
            soft.report(
                "a", load: EngineLoad(running: 3, waiting: 2, kvUsage: kvUsage), healthy: true, readingAge: .milliseconds(1),
                at: now + .milliseconds(50))
            func held(after elapsed: Duration) -> Bool {
                soft.warmupHold("second", on: "a", chain: chain, cachedChunks: 20, acceptsHold: true, at: now + elapsed) != nil
            }
            #expect(held(after: .milliseconds(60)), "kv \(kvUsage)")
            #expect(held(after: .milliseconds(150)), "kv \(kvUsage)")
            #expect(held(after: .seconds(1)) == heldAfterASecond, "kv \(kvUsage)")
        }
    }

    /// An engine whose KV cache is under pressure by its fresh report starts no warming entry:
    /// its requests wait for blocks, and what they compute may be evicted before a follower comes.
    @Test func noWarmingIsRecordedOnAnEngineShortOfKVBlocks() throws {
        var soft = LeaderSoftState(policy: try prefixCache(holdMilliseconds: 2_000), seed: 1)
        let now = soft.epoch + .seconds(10)
        soft.report("a", load: EngineLoad(running: 3, waiting: 0, kvUsage: 0.95), healthy: true, at: now)
        let chain = (0..<20).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
        soft.warming("first", on: soft.view(of: InstanceRecordFixture.record("a"), now: now), chain: chain, cachedChunks: 0, at: now)
        #expect(soft.warmup.warming["a"] == nil)
        #expect(soft.warmupHold("second", on: "a", chain: chain, cachedChunks: 20, acceptsHold: true, at: now + .milliseconds(5)) == nil)
    }
}
