import AgentCore
import Foundation
import PromText
import Testing

private func fixtureText(_ name: String) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    return try String(contentsOf: root.appendingPathComponent("Fixtures/\(name)"), encoding: .utf8)
}

@Suite struct ServedModelsTests {
    private let vllmList: [ServedModels.Entry] = [
        .init(id: "tiny"), .init(id: "tiny-chat"), .init(id: "sql", parent: "tiny"), .init(id: "poet", parent: "tiny"),
    ]

    @Test func theBaseModelItsOtherNamesAndItsAdaptersAreTold() throws {
        let (served, dropped) = try #require(ServedModels.from(vllmList, configured: nil, limit: 512))
        #expect(served == ServedModels(model: "tiny", aliases: ["tiny-chat"], adapters: ["sql", "poet"]))
        #expect(dropped == 0)
    }

    @Test func aRealVLLMWithALoRAAdapterIsReadAsItsBaseModelAndTheAdapter() throws {
        // Recorded from vLLM 0.32.0 (CPU) started with --enable-lora --lora-modules tiny-lora=DIR.
        let object = try JSONSerialization.jsonObject(with: Data(try fixtureText("vllm-0.32.0-cpu-lora-models.json").utf8))
        let data = try #require((object as? [String: Any])?["data"] as? [[String: Any]])
        let entries = data.map { ServedModels.Entry(id: $0["id"] as! String, parent: $0["parent"] as? String) }
        #expect(ServedModels.from(entries, configured: nil, limit: 512)?.served == ServedModels(model: "tiny", adapters: ["tiny-lora"]))
    }

    @Test func aConfiguredModelIsTheBaseAndTheRestAreStillServed() throws {
        let (served, _) = try #require(ServedModels.from(vllmList, configured: "tiny-chat", limit: 512))
        #expect(served == ServedModels(model: "tiny-chat", aliases: ["tiny"], adapters: ["sql", "poet"]))
        // An engine that has not listed anything yet serves the configured name.
        #expect(ServedModels.from([], configured: "x", limit: 512)?.served == ServedModels(model: "x"))
        #expect(ServedModels.from([], configured: nil, limit: 512) == nil)
    }

    @Test func aListWithoutABaseEntryStartsFromItsFirstAndDuplicatesCountOnce() throws {
        let list: [ServedModels.Entry] = [.init(id: "a", parent: "gone"), .init(id: "b", parent: "gone"), .init(id: "a", parent: "gone"), .init(id: "")]
        #expect(ServedModels.from(list, configured: nil, limit: 512)?.served == ServedModels(model: "a", adapters: ["b"]))
    }

    @Test func namesBeyondTheLimitAreDroppedAdaptersFirst() throws {
        let list = [ServedModels.Entry(id: "base"), .init(id: "alias")] + (0..<10).map { .init(id: "lora-\($0)", parent: "base") }
        let (served, dropped) = try #require(ServedModels.from(list, configured: nil, limit: 4))
        #expect(served.aliases == ["alias"] && served.adapters == ["lora-0", "lora-1", "lora-2"])
        #expect(dropped == 7)
    }
}

@Suite struct AdapterResidencyTests {
    private func page(_ series: [(running: String, waiting: String, time: Double)], maxLora: Int = 2) throws -> Exposition {
        var text = "# TYPE vllm:lora_requests_info gauge\n"
        for s in series {
            text += "vllm:lora_requests_info{max_lora=\"\(maxLora)\",running_lora_adapters=\"\(s.running)\",waiting_lora_adapters=\"\(s.waiting)\"} \(s.time)\n"
        }
        return try PromTextParser.parse(text)
    }

    @Test func theNewestSeriesTellsWhatRunsAndRecentAdaptersStayUpToMaxLora() throws {
        var residency = AdapterResidency()
        // vLLM keeps every label set it ever had; the newest has the largest time.
        residency.observe(try page([("a", "", 100), ("", "", 50)]))
        #expect(residency.loaded == ["a"] && residency.maxLoras == 2)
        residency.observe(try page([("a", "", 100), ("b", "c", 101), ("", "", 50)]))
        #expect(residency.loaded == ["b", "a"])  // c waits: not loaded
        residency.observe(try page([("a", "", 100), ("b", "c", 101), ("", "", 102)]))
        #expect(residency.loaded == ["b", "a"])  // idle: they stay in their slots
        residency.observe(try page([("c,a", "", 103), ("b", "c", 101)]))
        #expect(residency.loaded == ["c", "a"])  // two slots: b went
    }

    @Test func aRealVLLMThatWentIdleStillShowsTheAdapterItRan() throws {
        // vLLM 0.32.0 after one tiny-lora request and then one for the base model: its newest
        // series names no adapter, the older one names tiny-lora.
        var normaliser = LoadNormaliser(family: .vllm)
        let load = normaliser.normalise(try PromTextParser.parse(try fixtureText("vllm-0.32.0-cpu-lora-metrics.txt")), at: 0)
        #expect(load.loadedAdapters == ["tiny-lora"] && load.maxLoras == 1)
    }

    @Test func anOlderSeriesSeenAgainChangesNothingAndNoMetricMeansNoAdapters() throws {
        var residency = AdapterResidency()
        residency.observe(try page([("x", "", 10)]))
        residency.observe(try page([("y", "", 9)]))
        #expect(residency.loaded == ["x"])
        var none = AdapterResidency()
        none.observe(try PromTextParser.parse("vllm:num_requests_running 1\n"))
        #expect(none.loaded.isEmpty && none.maxLoras == 0)
    }

    @Test func theVLLMNormaliserReportsLoadedAdapters() throws {
        var normaliser = LoadNormaliser(family: .vllm)
        let load = normaliser.normalise(try page([(" sql , poet", "", 5)], maxLora: 4), at: 0)
        #expect(load.loadedAdapters == ["sql", "poet"] && load.maxLoras == 4)
        var sglang = LoadNormaliser(family: .sglang)
        #expect(sglang.normalise(try page([("sql", "", 5)]), at: 0).loadedAdapters.isEmpty)
    }
}
