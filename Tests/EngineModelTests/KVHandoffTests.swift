import EngineModel
import Testing

/// The core's side of prefill/decode disaggregation: a prefill names the blocks holding a prompt,
/// a decode caches the prompt it receives instead of computing it.
@Suite struct KVHandoffTests {
    @Test func aPrefillNamesTheBlocksThatHoldItsPrompt() throws {
        var prefill = try Driver(.tiny)
        let prompt = randomPrompt(1000, seed: 9)
        #expect(prefill.core.cachedBlockIDs(of: prompt).isEmpty)
        _ = try prefill.submit(prompt, maxTokens: 1)
        prefill.runUntilIdle()
        let blocks = prefill.core.cachedBlockIDs(of: prompt)
        #expect(blocks.count == 62 && Set(blocks).count == 62)
    }

    @Test func anImportedPromptIsNotComputedAgain() throws {
        var profile = EngineProfile.tiny
        profile.prefillPerToken = 0.000_1
        var decode = try Driver(profile)
        let prompt = randomPrompt(1000, seed: 3)
        #expect(decode.core.importPrefix(prompt, blocks: 62) == 992)
        #expect(decode.core.counters.importedBlocks == 62)
        let received = try decode.submit(prompt, maxTokens: 4)
        decode.runUntilIdle()
        #expect(decode.finished[received]!.1.cachedTokens == 992)

        var local = try Driver(profile)
        let computed = try local.submit(prompt, maxTokens: 4)
        local.runUntilIdle()
        #expect(local.finished[computed]!.1.cachedTokens == 0)
        #expect(decode.ttft(received) < local.ttft(computed) / 5)
    }

    @Test func anImportStopsWhereTheCacheIsFullAndKeepsWhatIsCached() throws {
        var decode = try Driver(.tiny)  // 256 blocks
        let prompt = randomPrompt(2000, seed: 4)
        // Half of it cached already: those blocks are kept, the rest imported.
        #expect(decode.core.importPrefix(Array(prompt.prefix(800)), blocks: 50) == 800)
        #expect(decode.core.importPrefix(prompt, blocks: 125) == 2000)
        #expect(decode.core.counters.importedBlocks == 125)  // the 50 already cached were not received again
        #expect(decode.core.cache.cachedBlockCount == 125)
        // Asking for more blocks than the prompt has imports only the prompt's full blocks.
        #expect(decode.core.importPrefix(randomPrompt(40, seed: 5), blocks: 10) == 32)
        // A prompt longer than the whole cache imports what fits.
        var small = try Driver(.tiny)
        #expect(small.core.importPrefix(randomPrompt(5000, seed: 6), blocks: 312) == 256 * 16)
    }
}
