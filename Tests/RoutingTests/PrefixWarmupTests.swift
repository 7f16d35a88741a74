@testable import Routing
import Seeded
import Testing

/// Holding a request whose prefix its instance is computing for a request not yet admitted there.
@Suite struct PrefixWarmupTests {
    /// A system prompt of 20 chunks, then a few chunks of each user's own.
    private func prompt(system: UInt64, user: UInt64, ownChunks: Int = 3) -> [UInt64] {
        var chain: [UInt64] = []
        var hash = system
        for k in 0..<20 {
            hash = hash &* 6_364_136_223_846_793_005 &+ UInt64(k + 1)
            chain.append(hash)
        }
        for k in 0..<ownChunks {
            hash = hash &* 6_364_136_223_846_793_005 &+ user &+ UInt64(k + 100)
            chain.append(hash)
        }
        return chain
    }

    private func warmup() -> PrefixWarmup { PrefixWarmup(maxHold: 2, minChunks: 16, arrivalGrace: 0.01, pollInterval: 0.05) }

    @Test func aFollowerWaitsUntilAReportShowsTheFirstRequestAdmitted() {
        var w = warmup()
        let first = prompt(system: 1, user: 1)
        let follower = prompt(system: 1, user: 2)
        w.sent("first", to: "e", chain: first, cachedChunks: 0, idle: false, at: 10)
        // The follower is believed to find the 20 system chunks there (the first request's).
        let held = w.hold("follower", on: "e", chain: follower, cachedChunks: 20, at: 10.001)
        #expect(held?.warmingChunks == 20 && held?.retryAfter == 0.05)
        // A report with requests waiting says nothing of the first one.
        w.reported("e", waiting: 3, observedAt: 10.24, at: 10.25)
        #expect(w.hold("follower", on: "e", chain: follower, cachedChunks: 20, at: 10.26) != nil)
        // Nothing waiting, in a report taken after the first request could have arrived: admitted.
        w.reported("e", waiting: 0, observedAt: 10.49, at: 10.5)
        #expect(w.hold("follower", on: "e", chain: follower, cachedChunks: 20, at: 10.5) == nil)
    }

    @Test func anEngineAdmitsInOrderSoFewerWaitingThanSentSinceSaysTheFirstWasAdmitted() {
        var w = warmup()
        let follower = prompt(system: 1, user: 2)
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: false, at: 10)
        // Three more requests go to e after it, the last too late for the reading below.
        for at in [10.05, 10.1, 10.345] { w.assigned(to: "e", at: at) }
        // Read at 10.35: two of them had arrived. Three waiting: the first may be one of them.
        w.reported("e", waiting: 3, observedAt: 10.35, at: 10.36)
        #expect(w.hold("follower", on: "e", chain: follower, cachedChunks: 20, at: 10.37) != nil)
        // Two waiting: were the first still waiting, the two that came after it would be too.
        w.reported("e", waiting: 2, observedAt: 10.35, at: 10.4)
        #expect(w.hold("follower", on: "e", chain: follower, cachedChunks: 20, at: 10.41) == nil)
    }

    @Test func aReadingTakenBeforeTheRequestCouldArriveDoesNotCount() {
        var w = warmup()
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: false, at: 10)
        // Read before the request can have reached the engine: its "nothing waiting" is older.
        w.reported("e", waiting: 0, observedAt: 10.005, at: 10.006)
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.011) != nil)
        // Received long after the send, but carrying a reading from before it (an agent reports
        // its latest scrape): no more.
        w.reported("e", waiting: 0, observedAt: 9.9, at: 10.5)
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.51) != nil)
    }

    @Test func onAnIdleEngineTheFirstRequestIsAdmittedAsItArrives() {
        var w = warmup()
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: true, at: 10)
        let held = w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.001)
        #expect(held.map { abs($0.retryAfter - 0.009) < 1e-9 } == true, "held \(String(describing: held))")
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.01) == nil)
    }

    @Test func noHoldOutlastsMaxHold() {
        var w = warmup()
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: false, at: 10)
        let follower = prompt(system: 1, user: 2)
        let late = w.hold("f", on: "e", chain: follower, cachedChunks: 20, at: 11.98)
        #expect(late.map { abs($0.retryAfter - 0.02) < 1e-9 } == true)
        #expect(w.hold("f", on: "e", chain: follower, cachedChunks: 20, at: 12) == nil)
        // Reports forget expired entries.
        w.reported("e", waiting: 5, observedAt: 12.1, at: 12.1)
        #expect(w.warming["e"] == nil && w.heldSince.keys.sorted() == ["f"])
        // And held requests once they could be held no longer.
        w.reported("e", waiting: 5, observedAt: 14, at: 14)
        #expect(w.heldSince.isEmpty)
    }

    /// On a fast engine a hold lasts at most as long as computing the shared chunks again would:
    /// 20 chunks at 5 ms a chunk, 100 ms, though `maxHold` is 2 s and no report says anything.
    @Test func noHoldOutlastsRecomputingWhatItShares() {
        var w = warmup()
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: false, at: 10)
        let follower = prompt(system: 1, user: 2)
        let fast = 0.005
        #expect(w.hold("f", on: "e", chain: follower, cachedChunks: 20, secondsPerChunk: fast, at: 10.001)?.retryAfter == 0.05)
        let last = w.hold("f", on: "e", chain: follower, cachedChunks: 20, secondsPerChunk: fast, at: 10.081)
        #expect(last.map { abs($0.retryAfter - 0.02) < 1e-9 } == true, "asks again when the bound ends")
        #expect(w.hold("f", on: "e", chain: follower, cachedChunks: 20, secondsPerChunk: fast, at: 10.101) == nil)
        // A slow engine (100 ms a chunk: 2 s for the 20) is bounded by `maxHold` first.
        #expect(w.hold("g", on: "e", chain: follower, cachedChunks: 20, secondsPerChunk: 0.1, at: 11) != nil)
        #expect(w.hold("g", on: "e", chain: follower, cachedChunks: 20, secondsPerChunk: 0.1, at: 11.9) != nil)
        // The bound counts the chunks the hold is for, not the whole prompt: a follower sharing 16 of
        // its 20 cached chunks with the warming request is held at most 80 ms.
        w.sent("second", to: "e2", chain: prompt(system: 2, user: 1), cachedChunks: 4, idle: false, at: 20)
        let other = prompt(system: 2, user: 3)
        #expect(w.hold("h", on: "e2", chain: other, cachedChunks: 20, secondsPerChunk: fast, at: 20.001)?.warmingChunks == 16)
        #expect(w.hold("h", on: "e2", chain: other, cachedChunks: 20, secondsPerChunk: fast, at: 20.07) != nil)
        #expect(w.hold("h", on: "e2", chain: other, cachedChunks: 20, secondsPerChunk: fast, at: 20.082) == nil)
    }

    @Test func aRequestIsHeldAtMostMaxHoldInAllBehindOneWarmingRequestAfterAnother() {
        var w = warmup()
        let system = prompt(system: 1, user: 0, ownChunks: 0)
        let document = prompt(system: 1, user: 9, ownChunks: 30)
        var question = document
        question.append(42)
        // A computes the system prompt; C (system prompt and a long document) and F (the same
        // document and a question) are held behind it.
        w.sent("A", to: "e", chain: system, cachedChunks: 0, idle: false, at: 10)
        #expect(w.hold("C", on: "e", chain: document, cachedChunks: 20, at: 10.1) != nil)
        #expect(w.hold("F", on: "e", chain: question, cachedChunks: 20, at: 10.2) != nil)
        // A's hold runs out; C goes and computes the document; F now waits for C, but only until
        // two seconds after it was first held.
        #expect(w.hold("C", on: "e", chain: document, cachedChunks: 20, at: 12) == nil)
        w.sent("C", to: "e", chain: document, cachedChunks: 20, idle: false, at: 12)
        #expect(w.heldSince["C"] == nil)
        let late = w.hold("F", on: "e", chain: question, cachedChunks: 50, at: 12.18)
        #expect(late?.warmingChunks == 30 && late.map { abs($0.retryAfter - 0.02) < 1e-9 } == true)
        #expect(w.hold("F", on: "e", chain: question, cachedChunks: 50, at: 12.2) == nil)
    }

    @Test func theFirstRequestEndingEndsTheHold() {
        var w = warmup()
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: false, at: 10)
        w.sent("elsewhere", to: "g", chain: prompt(system: 1, user: 1), cachedChunks: 0, idle: false, at: 10)
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.05) != nil)
        w.ended("first")
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.1) == nil)
        #expect(w.warming["e"] == nil && w.warming["g"]?.count == 1)
    }

    @Test func onlyAShareWorthAStepIsHeld() {
        var w = warmup()
        // Computing fewer chunks than the minimum: nothing to hold back for.
        w.sent("small", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 10, idle: false, at: 10)
        #expect(w.warming["e"] == nil)
        // A follower sharing only 8 chunks of what the first computes is not held.
        var other = prompt(system: 2, user: 1, ownChunks: 0)
        w.sent("first", to: "e", chain: other, cachedChunks: 0, idle: false, at: 10)
        other.replaceSubrange(8..., with: prompt(system: 3, user: 1).prefix(12))
        #expect(w.hold("f", on: "e", chain: other, cachedChunks: 20, at: 10.1) == nil)
    }

    @Test func whatWasCachedBeforeTheFirstRequestDoesNotCount() {
        var w = PrefixWarmup(maxHold: 2, minChunks: 12)
        // The first request found 10 chunks cached and computes the other 13.
        w.sent("first", to: "e", chain: prompt(system: 1, user: 1), cachedChunks: 10, idle: false, at: 10)
        // A follower relying on the 20 system chunks shares only 10 of what is being computed.
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 2), cachedChunks: 20, at: 10.1) == nil)
        // One relying on the first request's own chunks too (a repeat of the same prompt) shares 13.
        #expect(w.hold("f", on: "e", chain: prompt(system: 1, user: 1), cachedChunks: 23, at: 10.1)?.warmingChunks == 13)
    }

    @Test func aRequestIsNeverHeldForItselfNorOnAnotherInstance() {
        var w = warmup()
        let chain = prompt(system: 1, user: 1)
        w.sent("first", to: "e", chain: chain, cachedChunks: 0, idle: false, at: 10)
        #expect(w.hold("first", on: "e", chain: chain, cachedChunks: 23, at: 10.1) == nil)
        #expect(w.hold("f", on: "other", chain: chain, cachedChunks: 23, at: 10.1) == nil)
        // Off: nothing is recorded.
        var off = PrefixWarmup(maxHold: 0, minChunks: 16)
        off.sent("first", to: "e", chain: chain, cachedChunks: 0, idle: false, at: 10)
        #expect(off.warming.isEmpty)
    }

    @Test func aBurstKeepsABoundedNumberOfEntries() {
        var w = warmup()
        for i in 0..<200 { w.sent("r\(i)", to: "e", chain: prompt(system: UInt64(i), user: 0), cachedChunks: 0, idle: false, at: 10) }
        #expect(w.warming["e"]?.count == PrefixWarmup.maxEntriesPerInstance)
        #expect(w.warming["e"]?.last?.request == "r199")
    }

    @Test func theCommonPrefixOfChainedHashesIsFoundBySearch() {
        var rng = SplitMix64(seed: 9)
        for _ in 0..<500 {
            let length = Int(rng.next() % 40)
            let a = (0..<length).map { _ in rng.next() }
            var b = a
            let split = Int(rng.next() % UInt64(length + 1))
            // Chained: once two chains differ they differ at every later chunk.
            for k in split..<b.count { b[k] = ~a[k] }
            b += (0..<Int(rng.next() % 5)).map { _ in rng.next() }
            let limit = Int(rng.next() % 50)
            let linear = zip(a, b).prefix(limit).prefix { $0 == $1 }.count
            #expect(PrefixWarmup.commonPrefix(a, b, upTo: limit) == linear)
        }
    }

    /// The sends counted against a report's waiting requests are found by binary search in the
    /// ascending send times; it must count what a scan counts, with repeated times and bounds on them.
    @Test func sendsInAWindowAreCountedBySearch() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<500 {
            var clock = 0.0
            let times = (0..<Int(rng.next() % 30)).map { _ in
                clock += Double(rng.next() % 3) * 0.01  // steps of 0, 10 or 20 ms: repeats included
                return clock
            }
            let start = Double(rng.next() % 40) * 0.01 - 0.05
            let end = start + Double(rng.next() % 40) * 0.01 - 0.05
            let scan = times.filter { $0 > start && $0 <= end }.count
            #expect(PrefixWarmup.count(times, after: start, upTo: end) == scan)
        }
    }
}
