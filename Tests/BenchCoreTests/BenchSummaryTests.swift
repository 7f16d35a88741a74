import BenchCore
import Testing

@Suite struct BenchSummaryTests {
    static let records = [
        RequestRecord(conversation: "a", turn: 0, start: 0, firstToken: 0.1, end: 1.1, promptTokens: 100, outputTokens: 11),
        RequestRecord(conversation: "a", turn: 1, start: 1.2, firstToken: 1.5, end: 2.0, promptTokens: 300, outputTokens: 6),
        RequestRecord(conversation: "b", turn: 0, start: 0.5, firstToken: nil, end: 0.6, promptTokens: 50, outputTokens: 0, error: "HTTP 503"),
        RequestRecord(conversation: "c", turn: 0, start: 0.2, firstToken: 0.4, end: 0.4, promptTokens: 20, outputTokens: 1),
    ]

    @Test func theSeedsFiguresFromRecords() {
        let summary = BenchSummary(target: "x", records: Self.records, prefixCacheHitRate: 0.25)
        #expect(summary.successful == 3 && summary.failed == 1)
        #expect(summary.durationSeconds == 2.0)
        #expect(summary.inputTokens == 420 && summary.outputTokens == 18)
        #expect(abs(summary.requestThroughput - 1.5) < 1e-9 && abs(summary.outputThroughput - 9) < 1e-9)
        #expect(abs(summary.totalThroughput - 219) < 1e-9)
        // TTFTs 100, 300, 200 ms; TPOT only where two or more tokens: 100 ms (1 s / 10), 100 ms (0.5 s / 5).
        #expect(abs(summary.ttftMs.mean - 200) < 1e-6 && abs(summary.ttftMs.median - 200) < 1e-6 && abs(summary.ttftMs.p99 - 300) < 1e-6)
        #expect(abs(summary.tpotMs.mean - 100) < 1e-6 && abs(summary.tpotMs.p99 - 100) < 1e-6)
        #expect(summary.errors == ["HTTP 503"])
        #expect(summary.prefixCacheHitRate == 0.25)
    }

    @Test func theTableShowsChangesAgainstTheBaseline() {
        let base = BenchSummary(target: "round-robin", records: Self.records)
        var faster = Self.records
        faster[1].firstToken = 1.3  // TTFT 100 ms instead of 300: mean 133.3 instead of 200
        let table = ComparisonTable.markdown([base, BenchSummary(target: "prefix-cache", records: faster)], baseline: "round-robin")
        let ttft = table.split(separator: "\n").first { $0.hasPrefix("| mean TTFT") }!
        #expect(ttft == "| mean TTFT (ms) | 200 | 133 (-33.3%) |")
        #expect(table.hasPrefix("| metric | round-robin | prefix-cache |"))
        #expect(table.contains("| prefix-cache hit rate | — | — |"))
    }

    @Test func thePlotHasOneCurvePerTarget() {
        let svg = TTFTPlot.svg(title: "a <b>", series: [("one", [10, 20, 30]), ("two & three", [5, 50]), ("none", [])])
        #expect(svg.components(separatedBy: "<polyline").count == 3)
        #expect(svg.contains("two &amp; three") && svg.contains("a &lt;b&gt;"))
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
    }
}
