import Foundation

/// The seed's table in Markdown: one column per target, and for every target but the baseline
/// the change against the baseline in percent (negative TTFT and TPOT changes are gains).
public enum ComparisonTable {
    struct Row: Sendable {
        let name: String
        let value: @Sendable (BenchSummary) -> Double?
        let format: @Sendable (Double) -> String
        /// Whether a change is worth showing (not for counts like failed requests).
        let compare: Bool
    }

    static let rows: [Row] = [
        Row(name: "successful requests", value: { Double($0.successful) }, format: integer, compare: false),
        Row(name: "failed requests", value: { Double($0.failed) }, format: integer, compare: false),
        Row(name: "duration (s)", value: { $0.durationSeconds }, format: { String(format: "%.1f", $0) }, compare: true),
        Row(name: "input tokens", value: { Double($0.inputTokens) }, format: integer, compare: false),
        Row(name: "generated tokens", value: { Double($0.outputTokens) }, format: integer, compare: false),
        Row(name: "request throughput (req/s)", value: { $0.requestThroughput }, format: { String(format: "%.2f", $0) }, compare: true),
        Row(name: "output tokens/s", value: { $0.outputThroughput }, format: { String(format: "%.0f", $0) }, compare: true),
        Row(name: "total tokens/s", value: { $0.totalThroughput }, format: { String(format: "%.0f", $0) }, compare: true),
        Row(name: "mean TTFT (ms)", value: { $0.ttftMs.mean }, format: milliseconds, compare: true),
        Row(name: "median TTFT (ms)", value: { $0.ttftMs.median }, format: milliseconds, compare: true),
        Row(name: "P99 TTFT (ms)", value: { $0.ttftMs.p99 }, format: milliseconds, compare: true),
        Row(name: "mean TPOT (ms)", value: { $0.tpotMs.mean }, format: milliseconds, compare: true),
        Row(name: "median TPOT (ms)", value: { $0.tpotMs.median }, format: milliseconds, compare: true),
        Row(name: "P99 TPOT (ms)", value: { $0.tpotMs.p99 }, format: milliseconds, compare: true),
        Row(name: "mean end-to-end (ms)", value: { $0.latencyMs.mean }, format: milliseconds, compare: true),
        Row(name: "prefix-cache hit rate", value: { $0.prefixCacheHitRate.map { $0 * 100 } }, format: { String(format: "%.1f %%", $0) }, compare: false),
    ]

    public static func markdown(_ summaries: [BenchSummary], baseline: String?) -> String {
        let base = summaries.first { $0.target == baseline }
        var lines = ["| metric | " + summaries.map(\.target).joined(separator: " | ") + " |"]
        lines.append("|---|" + String(repeating: "---|", count: summaries.count))
        for row in rows {
            let cells = summaries.map { summary -> String in
                guard let value = row.value(summary) else { return "—" }
                var cell = row.format(value)
                if row.compare, let base, summary.target != base.target, let reference = row.value(base), reference > 0 {
                    cell += String(format: " (%+.1f%%)", (value / reference - 1) * 100)
                }
                return cell
            }
            lines.append("| \(row.name) | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    static func integer(_ value: Double) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.groupingSeparator = ","
        return formatter.string(from: NSNumber(value: Int(value.rounded()))) ?? String(Int(value))
    }

    static func milliseconds(_ value: Double) -> String { String(format: value >= 100 ? "%.0f" : "%.1f", value) }
}
