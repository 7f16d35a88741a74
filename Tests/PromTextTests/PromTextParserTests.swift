import Foundation
import PromText
import Testing

private func fixture(_ name: String) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    return try String(contentsOf: root.appendingPathComponent("Fixtures/\(name)"), encoding: .utf8)
}

@Suite struct PromTextParserTests {
    @Test func theRealVLLMExpositionParses() throws {
        let exposition = try PromTextParser.parse(try fixture("vllm-0.32.0-cpu-metrics.txt"))
        let running = try #require(exposition.samples(named: "vllm:num_requests_running").first)
        #expect(running.label("model_name") == "tiny" && running.label("engine") == "0" && running.value == 0)
        #expect(exposition.family("vllm:prompt_tokens_total")?.kind == .counter)
        #expect(exposition.samples(named: "vllm:prompt_tokens_total").first?.value == 47)
        let ttft = try #require(exposition.family("vllm:time_to_first_token_seconds"))
        #expect(ttft.kind == .histogram)
        let buckets = ttft.samples.filter { $0.name.hasSuffix("_bucket") }
        #expect(buckets.count > 5 && buckets.last?.label("le") == "+Inf")
        #expect(ttft.samples.contains { $0.name == "vllm:time_to_first_token_seconds_count" })
        let config = try #require(exposition.samples(named: "vllm:cache_config_info").first)
        #expect(config.label("kv_cache_size_tokens") == "524288" && config.label("block_size") == "128")
        // Every family the real engine declared was read, none invented from its samples.
        let declared = try fixture("vllm-0.32.0-cpu-metrics.txt").split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.count
        #expect(exposition.families.count == declared)
    }

    @Test func labelsEscapesSpecialValuesTimestampsAndExemplars() throws {
        let text = """
            # HELP req_total Requests, with a backslash \\\\ and a\\nnewline.
            # TYPE req_total counter
            req_total{path="/a\\"b\\\\c\\nd",code="200",} 1027 1395066363000
            req_total{path="/x"} +Inf
            req_created{} 1.7e9
            # TYPE lat histogram
            lat_bucket{le="0.1"} 3 # {trace_id="abc"} 0.05 1520879607.789
            lat_bucket{le="+Inf"} 5
            lat_sum 0.9
            lat_count 5
            temp NaN
            neg -Inf
            {"utf8.metric", "label.x"="y"} 2
            """
        let exposition = try PromTextParser.parse(text)
        let family = try #require(exposition.family("req_total"))
        #expect(family.help == "Requests, with a backslash \\ and a\nnewline.")
        #expect(family.samples[0].labels == [Label("path", "/a\"b\\c\nd"), Label("code", "200")])
        #expect(family.samples[0].timestamp == 1_395_066_363_000)
        #expect(family.samples[1].value == .infinity)
        #expect(exposition.samples(named: "req_created").first?.value == 1.7e9)
        let histogram = try #require(exposition.family("lat"))
        #expect(histogram.samples.count == 4)
        #expect(histogram.samples[0].exemplar == Exemplar(labels: [Label("trace_id", "abc")], value: 0.05, timestamp: 1_520_879_607.789))
        #expect(exposition.samples(named: "temp").first?.value.isNaN == true)
        #expect(exposition.samples(named: "neg").first?.value == -.infinity)
        #expect(exposition.samples(named: "utf8.metric").first?.label("label.x") == "y")
    }

    @Test func summariesCountersAndEOF() throws {
        let text = """
            # TYPE rpc summary
            rpc{quantile="0.5"} 0.2
            rpc{quantile="0.99"} 1.5
            rpc_sum 120
            rpc_count 400
            rpc_created 1.6e9
            # TYPE events counter
            events_total 3
            # EOF
            ignored after eof
            """
        let exposition = try PromTextParser.parse(text)
        #expect(exposition.family("rpc")?.samples.count == 5)
        #expect(exposition.family("events")?.samples.map(\.name) == ["events_total"])
        #expect(exposition.families.count == 2)
    }

    @Test(arguments: [
        ("metric{a=\"1\" 2", 1, "expected ',' or '}' in the label set"),
        ("metric{a=\"1\"", 1, "the label set is not closed with '}'"),
        ("metric{a=1} 2", 1, "expected a quoted value for label 'a'"),
        ("metric{a=\"1\",a=\"2\"} 3", 1, "label 'a' appears twice"),
        ("metric{a=\"x} 2", 1, "a quoted string is not closed"),
        ("ok 1\nmetric twelve", 2, "'twelve' is not a valid value"),
        ("metric 1 notatime", 1, "'notatime' is not a valid timestamp"),
        ("metric", 1, "expected a value for 'metric'"),
        ("9metric 1", 1, "expected a metric name"),
        ("# TYPE m sometimes", 1, "unknown metric type 'sometimes'"),
        ("# TYPE m counter\n# TYPE m gauge", 2, "'m' was declared counter before"),
        ("metric 1 2 3", 1, "unexpected text after the sample"),
        ("metric 1 NaN", 1, "'NaN' is not a valid timestamp"),
        ("metric 1 1e999", 1, "'1e999' is not a valid timestamp"),
        ("metric 0x1p3", 1, "'0x1p3' is not a valid value"),
    ])
    func malformedTextSaysWhereAndWhy(text: String, line: Int, reason: String) {
        #expect(throws: PromTextError.self) { try PromTextParser.parse(text) }
        do {
            _ = try PromTextParser.parse(text)
        } catch {
            #expect(error.line == line)
            #expect(error.reason == reason)
        }
    }

    @Test func blankLinesCommentsAndCRLFAreFine() throws {
        let exposition = try PromTextParser.parse("# just a comment\r\n\r\n   \r\nup 1\r\n# another\r\n")
        #expect(exposition.samples(named: "up") == [Sample(name: "up", value: 1)])
    }
}

@Suite struct ExpositionRendererTests {
    @Test func renderedTextParsesBackEqual() throws {
        let original = try PromTextParser.parse(try fixture("vllm-0.32.0-cpu-metrics.txt"))
        #expect(try PromTextParser.parse(original.text) == original)
        let tricky = try PromTextParser.parse(
            "# HELP a odd \\\\ help\\nline\n# TYPE a gauge\na{x=\"q\\\"\\n\\\\\"} NaN 12\n{\"b.c\",\"d e\"=\"1\"} -Inf # {t=\"1\"} 2 3\nplain 1e-05\n")
        #expect(try PromTextParser.parse(tricky.text) == tricky)
    }
}
