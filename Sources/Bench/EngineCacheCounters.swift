import AsyncHTTPClient
import Foundation
import PromText

/// The engines' own prefix-cache counters, read from their `/metrics`: hits and queried prompt
/// tokens summed over the engines (vLLM's `vllm:prefix_cache_hits_total` and
/// `vllm:prefix_cache_queries_total`). The hit rate of a run is the change between two reads.
public struct EngineCacheCounters: Sendable, Equatable {
    public var hits = 0.0
    public var queries = 0.0

    public init(hits: Double = 0, queries: Double = 0) {
        self.hits = hits
        self.queries = queries
    }

    /// nil when no engine answered with the counters.
    public static func read(_ metricsURLs: [String]) async -> EngineCacheCounters? {
        guard !metricsURLs.isEmpty else { return nil }
        var total = EngineCacheCounters()
        var found = false
        for url in metricsURLs {
            guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5)),
                response.status == .ok, let body = try? await response.body.collect(upTo: 32 << 20),
                let page = try? PromTextParser.parse(String(buffer: body))
            else { continue }
            let hits = page.samples(named: "vllm:prefix_cache_hits_total")
            let queries = page.samples(named: "vllm:prefix_cache_queries_total")
            guard !hits.isEmpty, !queries.isEmpty else { continue }
            found = true
            total.hits += hits.reduce(0) { $0 + $1.value }
            total.queries += queries.reduce(0) { $0 + $1.value }
        }
        return found ? total : nil
    }

    /// Hits over queries between `before` and `after`.
    public static func hitRate(from before: EngineCacheCounters?, to after: EngineCacheCounters?) -> Double? {
        guard let before, let after, after.queries > before.queries else { return nil }
        return (after.hits - before.hits) / (after.queries - before.queries)
    }
}
