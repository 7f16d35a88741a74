import EngineModel
import Testing

/// LoRA adapters in the core, as vLLM serves them: a batch uses at most `maxLoras` adapters,
/// loading one into a slot costs a step time, and cached prefixes are the adapter's own.
@Suite struct LoRATests {
    private func core(maxLoras: Int, loadSeconds: Double = 0.05) throws -> EngineCore {
        try EngineCore(profile: .tiny, lora: .init(maxLoras: maxLoras, loadSeconds: loadSeconds))
    }

    private func submit(_ core: inout EngineCore, _ prompt: [UInt32], adapter: String?, maxTokens: Int = 8) throws -> EngineRequestID {
        try core.submit(GenerationRequest(promptTokens: prompt, maxTokens: maxTokens, ignoreEOS: true, seed: 1, adapter: adapter))
    }

    /// Steps until idle; returns when each request was first scheduled, in steps.
    private func run(_ core: inout EngineCore) -> (scheduledAtStep: [EngineRequestID: Int], usage: [EngineRequestID: TokenUsage]) {
        var scheduled: [EngineRequestID: Int] = [:]
        var usage: [EngineRequestID: TokenUsage] = [:]
        var step = 0
        while let result = core.step(), step < 100_000 {
            step += 1
            for event in result.events {
                if case .scheduled(let id, _) = event { scheduled[id] = step }
                if case .finished(let id, _, let used) = event { usage[id] = used }
            }
        }
        return (scheduled, usage)
    }

    @Test func aBatchUsesAtMostMaxLorasAdaptersAndLaterRequestsMayPassOneThatWaits() throws {
        var engine = try core(maxLoras: 1)
        let a = try submit(&engine, randomPrompt(40, seed: 1), adapter: "a", maxTokens: 20)
        let b = try submit(&engine, randomPrompt(40, seed: 2), adapter: "b")
        let base = try submit(&engine, randomPrompt(40, seed: 3), adapter: nil)
        let a2 = try submit(&engine, randomPrompt(40, seed: 4), adapter: "a")
        let first = engine.step()!
        let admitted = first.events.compactMap { if case .scheduled(let id, _) = $0 { id } else { nil } }
        // b waits for a's slot; the base model and a second request for a go ahead of it.
        #expect(admitted == [a, base, a2])
        #expect(engine.runningAdapters == ["a"] && first.runningAdapters == ["a"])
        #expect(engine.waitingAdapters == ["b"] && first.waitingAdapters == ["b"])
        let (scheduled, usage) = run(&engine)
        #expect(scheduled[b] != nil)
        #expect(usage.count == 4)
        #expect(scheduled[b]! > 15)  // only once a (20 tokens) has left the batch
        #expect(engine.loadedAdapters == ["b"])
        #expect(engine.counters.adapterLoads == 2)
    }

    @Test func theStepThatFinishesARequestStillCountsItsAdapterAsRunning() throws {
        var engine = try core(maxLoras: 1)
        _ = try submit(&engine, randomPrompt(16, seed: 1), adapter: "a", maxTokens: 1)
        let step = engine.step()!
        #expect(step.events.contains { if case .finished = $0 { true } else { false } })
        #expect(step.runningAdapters == ["a"] && engine.runningAdapters.isEmpty)
        _ = try submit(&engine, randomPrompt(16, seed: 2), adapter: nil, maxTokens: 1)
        #expect(engine.step()!.runningAdapters.isEmpty)  // no adapter request left: no stats
    }

    @Test func loadingAnAdapterCostsItsLoadTimeOnceWhileItStaysInASlot() throws {
        var engine = try core(maxLoras: 2, loadSeconds: 0.05)
        _ = try submit(&engine, randomPrompt(16, seed: 1), adapter: "a")
        let loaded = engine.step()!
        _ = run(&engine)
        _ = try submit(&engine, randomPrompt(16, seed: 2), adapter: "a")
        let warm = engine.step()!
        #expect(loaded.duration - warm.duration > 0.049)
        #expect(engine.counters.adapterLoads == 1)
    }

    @Test func theSlotOfAnAdapterStillRunningIsNotTaken() throws {
        var engine = try core(maxLoras: 2)
        _ = try submit(&engine, randomPrompt(16, seed: 1), adapter: "a", maxTokens: 200)  // runs long
        _ = engine.step()
        _ = try submit(&engine, randomPrompt(16, seed: 2), adapter: "b", maxTokens: 2)
        for _ in 0..<5 { _ = engine.step() }  // b done; slots [a, b], a least recently used
        _ = try submit(&engine, randomPrompt(16, seed: 3), adapter: "c", maxTokens: 2)
        _ = engine.step()
        #expect(engine.runningAdapters.contains("a"))
        #expect(Set(engine.loadedAdapters) == ["a", "c"])
    }

    @Test func aCachedPrefixServesOnlyTheAdapterThatComputedIt() throws {
        var engine = try core(maxLoras: 2)
        let prompt = randomPrompt(100, seed: 9)
        _ = try submit(&engine, prompt, adapter: "a")
        _ = run(&engine)
        let sameAdapter = try submit(&engine, prompt, adapter: "a")
        let otherAdapter = try submit(&engine, prompt, adapter: "b")
        let baseModel = try submit(&engine, prompt, adapter: nil)
        let usage = run(&engine).usage
        #expect(usage[sameAdapter]!.cachedTokens == 96)
        #expect(usage[otherAdapter]!.cachedTokens == 0)
        #expect(usage[baseModel]!.cachedTokens == 0)
    }
}
