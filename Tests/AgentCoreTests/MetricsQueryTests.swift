import AgentCore
import Foundation
import PromText
import Testing

/// The lines of a text page a prometheus_client restricted registry would keep for `names`:
/// the samples named, and their family's HELP and TYPE.
private func restricted(_ text: String, to names: [String]) throws -> Exposition {
    let wanted = Set(names)
    let kept = text.split(separator: "\n").filter { line in
        if line.hasPrefix("#") { return true }
        let name = line.prefix { $0 != "{" && $0 != " " }
        return wanted.contains(String(name))
    }
    return try PromTextParser.parse(kept.joined(separator: "\n") + "\n")
}

private func sampleCount(_ page: Exposition) -> Int { page.families.reduce(0) { $0 + $1.samples.count } }

private func fixtureText(_ name: String) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    return try String(contentsOf: root.appendingPathComponent("Fixtures/\(name)"), encoding: .utf8)
}

@Suite struct MetricsQueryTests {
    @Test func theFilteredPathNamesEverySampleTheNormaliserReads() {
        let query = MetricsQuery(family: .vllm)
        #expect(query.path.hasPrefix("/metrics?name%5B%5D=vllm%3Anum_requests_running&name%5B%5D=vllm%3Anum_requests_waiting&"))
        #expect(query.names.contains("vllm:cache_config_info") && query.names.contains("vllm:lora_requests_info"))
        #expect(query.names.contains("vllm:prompt_tokens_total") && query.names.contains("vllm:prefix_cache_hits_total"))
        #expect(Set(query.names).count == query.names.count)
        // SGLang reads its prompt counter twice (tokens and cache lookups): asked once.
        #expect(MetricsQuery(family: .sglang).names.filter { $0 == "sglang:prompt_tokens_total" }.count == 1)
        #expect(MetricsQuery(family: .vllm, filtering: false).path == "/metrics")
    }

    /// A real vLLM page cut down to the samples asked for normalises exactly as the whole page:
    /// nothing the agent reads is left out of the query.
    @Test(arguments: ["vllm-0.32.0-cpu-metrics.txt", "vllm-0.32.0-cpu-lora-metrics.txt"])
    func aRestrictedRealVLLMPageNormalisesAsTheWholePage(fixture: String) throws {
        let text = try fixtureText(fixture)
        let names = MetricsQuery(family: .vllm).names
        var whole = LoadNormaliser(family: .vllm)
        var filtered = LoadNormaliser(family: .vllm)
        let full = try PromTextParser.parse(text)
        let cut = try restricted(text, to: names)
        #expect(sampleCount(cut) < sampleCount(full) / 4)
        #expect(whole.normalise(full, at: 0) == filtered.normalise(cut, at: 0))
        #expect(whole.normalise(full, at: 1) == filtered.normalise(cut, at: 1))
    }

    @Test func aFilteredPageWithoutTheRunningGaugeStopsFiltering() throws {
        var query = MetricsQuery(family: .vllm)
        let running = MetricNames.vllm.running
        // prometheus_client in multiprocess mode knows no names: the filtered page is empty.
        #expect(!query.accepts(try PromTextParser.parse(""), running: running))
        #expect(!query.filtering && query.path == "/metrics")
        // Once filtering is off, any page is taken.
        #expect(query.accepts(try PromTextParser.parse(""), running: running))

        var honoured = MetricsQuery(family: .vllm)
        #expect(honoured.accepts(try PromTextParser.parse("vllm:num_requests_running{engine=\"0\"} 3.0\n"), running: running))
        #expect(honoured.filtering)
        // A server that ignores the query and sends everything is believed too.
        #expect(honoured.accepts(try PromTextParser.parse(try fixtureText("vllm-0.32.0-cpu-metrics.txt")), running: running))
    }
}
