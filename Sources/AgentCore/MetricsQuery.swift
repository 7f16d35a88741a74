import PromText

/// Which `/metrics` page the agent asks for. Python's prometheus_client, which vLLM and SGLang
/// serve their metrics with, answers `/metrics?name[]=A&name[]=B` with only the samples named
/// (a histogram's 20-odd buckets, which make up most of a vLLM page, are not even formatted),
/// so once the engine's kind is known the agent asks for the samples it reads and nothing else.
/// Rendering the whole page four times a second costs the engine's API server CPU it needs for
/// requests (Docs/benchmarks.md measures the simulator's: 0.52–0.61 ms a whole page against
/// 0.29 ms a filtered one, 0.18 ms of which any request costs), and the agent parses less.
///
/// An engine may not honour the filter as asked: prometheus_client in multiprocess mode (vLLM
/// with several API server processes) knows no names and answers the filtered page empty, and
/// other servers ignore the query and send everything. Everything is harmless; nothing is not.
/// So a filtered page without the running-requests gauge is not believed: the agent scrapes the
/// whole page at once and does not filter again.
public struct MetricsQuery: Sendable, Equatable {
    public private(set) var filtering: Bool
    public let names: [String]

    public init(family: EngineFamily, filtering: Bool = true) {
        names = MetricNames.of(family).read
        self.filtering = filtering
    }

    /// The path to scrape: `/metrics`, or `/metrics?name%5B%5D=…` for each name read.
    public var path: String {
        guard filtering, !names.isEmpty else { return "/metrics" }
        return "/metrics?" + names.map { "name%5B%5D=" + Self.percentEncoded($0) }.joined(separator: "&")
    }

    /// A filtered page that came back: whether it is to be believed. When it is not, filtering
    /// stops and the caller scrapes the whole page.
    public mutating func accepts(_ page: Exposition, running: [String]) -> Bool {
        guard filtering else { return true }
        if running.contains(where: { !page.samples(named: $0).isEmpty }) { return true }
        filtering = false
        return false
    }

    /// Query-string encoding: letters, digits and `-._~` stay; every other byte is `%XX`
    /// (a name's `:` included, as Python's `urllib.parse.quote` would write it).
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0xF)])
            }
        }
        return out
    }
}

extension MetricNames {
    /// Every sample name the normaliser may read, each once, in the table's order.
    public var read: [String] {
        var names = running + waiting + kvUsage + promptTokens + generationTokens
        names += [cacheHits, cacheLookups, cacheHitRateGauge, capacityTokens, capacityBlocks, blockSize, cacheConfigInfo].compactMap { $0 }
        if loraInfo { names.append(AdapterResidency.metric) }
        var seen = Set<String>()
        return names.filter { seen.insert($0).inserted }
    }
}
