import EngineModel
import Testing

@Suite struct KVCacheTests {
    @Test func freedBlocksStayHittableUntilReusedFromTheQueueHead() throws {
        var cache = KVCache(blockCount: 4, blockSize: 16)
        let aAllocated = cache.allocate(2)
        let a = try #require(aAllocated)
        cache.register(a[0], hash: 100)
        cache.register(a[1], hash: 101)
        cache.release(a)
        #expect(cache.freeCount == 4)
        #expect(cache.cachedPrefix(of: [100, 101]) == a)
        // Two fresh blocks come from the head: the two never-used blocks, not the cached ones.
        let bAllocated = cache.allocate(2)
        let b = try #require(bAllocated)
        #expect(Set(b).isDisjoint(with: a))
        #expect(cache.cachedPrefix(of: [100, 101]).count == 2)
        // The next allocation must evict: the tail block of the freed sequence goes first.
        let cAllocated = cache.allocate(1)
        let c = try #require(cAllocated)
        #expect(c == [a[1]])
        #expect(cache.cachedPrefix(of: [100, 101]) == [a[0]])
        #expect(cache.evictions == 1)
    }

    @Test func takingAHitRemovesItFromTheFreeQueueAndCountsAgainstAllocation() throws {
        var cache = KVCache(blockCount: 3, blockSize: 16)
        let aAllocated = cache.allocate(1)
        let a = try #require(aAllocated)
        cache.register(a[0], hash: 7)
        cache.release(a)
        #expect(cache.canAllocate(3))
        #expect(!cache.canAllocate(3, afterTaking: a))
        #expect(cache.canAllocate(2, afterTaking: a))
        cache.take(a)
        #expect(cache.freeCount == 2)
        #expect(cache.allocate(3) == nil)
        #expect(cache.freeCount == 2)
    }

    @Test func sharedBlocksAreFreedOnlyByTheLastHolder() throws {
        var cache = KVCache(blockCount: 2, blockSize: 16)
        let aAllocated = cache.allocate(1)
        let a = try #require(aAllocated)
        cache.register(a[0], hash: 9)
        cache.take(a)
        cache.release(a)
        #expect(cache.freeCount == 1)
        cache.release(a)
        #expect(cache.freeCount == 2)
        #expect(cache.usage == 0)
    }

    @Test func resetForgetsEveryPrefix() throws {
        var cache = KVCache(blockCount: 2, blockSize: 16)
        let aAllocated = cache.allocate(1)
        let a = try #require(aAllocated)
        cache.register(a[0], hash: 5)
        cache.resetPrefixCache()
        #expect(cache.cachedPrefix(of: [5]).isEmpty)
        #expect(cache.cachedBlockCount == 0)
    }

    @Test func chainHashDependsOnParentAndTokens() {
        let tokens: [UInt32] = Array(0..<16)
        let h = KVCache.chainHash(parent: 0, tokens: tokens[...])
        #expect(h == KVCache.chainHash(parent: 0, tokens: tokens[...]))
        #expect(h != KVCache.chainHash(parent: 1, tokens: tokens[...]))
        #expect(h != KVCache.chainHash(parent: 0, tokens: (Array(tokens.dropLast()) + [99])[...]))
    }
}
