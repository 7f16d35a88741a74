import Routing
import Seeded

/// Decisions per second and decision latency of the pure policies, at several pool sizes, with
/// an affinity table filled the way a busy scheduler's is: every instance holding thousands of
/// chains of a multi-turn chat workload, many sharing system-prompt prefixes.
public enum RoutingBenchmark {
    public static func report(decisions: Int) {
        print("Routing policies: \(decisions) decisions per row, 32-chunk prompts, table filled with")
        print("2,000 conversations per instance (8 shared system prompts); one decision at a time.\n")
        print("| instances | policy | decisions/s | p50 | p99 | affinity entries |")
        print("|---|---|---|---|---|---|")
        for count in [8, 64, 256] {
            var rng = SplitMix64(seed: UInt64(count))
            let pool = (0..<count).map { index in
                RoutingInstance(
                    id: "engine-\(index)", model: "m",
                    load: EngineLoad(
                        running: Int(rng.next() % 64), waiting: Int(rng.next() % 8),
                        kvUsage: Double(rng.next() % 90) / 100),
                    inFlight: Int(rng.next() % 16))
            }
            let systemPrompts = (0..<8).map { _ in (0..<8).map { _ in rng.next() } }
            func conversation(_ rng: inout SplitMix64) -> [UInt64] {
                systemPrompts[Int(rng.next() % 8)] + (0..<24).map { _ in rng.next() }
            }
            var table = PrefixAffinityTable()
            var served: [[UInt64]] = []
            for instance in pool {
                table.setCapacity(65_536, for: instance.id)
                for _ in 0..<2_000 {
                    let hashes = conversation(&rng)
                    table.record(hashes, on: instance.id)
                    if served.count < 4_096 { served.append(hashes) }
                }
            }
            // Requests: half repeat a conversation an instance served (a full match), half are new
            // (they match only the shared system prompt, on every instance).
            let requests = (0..<decisions).map { index -> RoutingRequest in
                let hashes = index % 2 == 0 ? served[Int(rng.next() % UInt64(served.count))] : conversation(&rng)
                return RoutingRequest(model: "m", prefixHashes: hashes, promptTokens: 2048)
            }
            let entries = pool.reduce(0) { $0 + table.entryCount(of: $1.id) }
            for policy in [PolicyConfiguration.Name.expectedTTFT, .prefixCache, .llmMetrics, .leastRequest, .roundRobin] {
                var configuration = PolicyConfiguration()
                configuration.name = policy
                var router = Router(configuration: configuration)
                var samples: [Double] = []
                samples.reserveCapacity(decisions)
                let clock = ContinuousClock()
                var assigned = 0
                let total = clock.measure {
                    for request in requests {
                        let start = clock.now
                        if case .assign = router.decide(request, instances: pool, affinity: table) { assigned += 1 }
                        samples.append((clock.now - start).nanoseconds)
                    }
                }
                precondition(assigned == decisions)
                let summary = LatencySummary(nanoseconds: samples)
                let rate = Double(decisions) / (total.nanoseconds / 1e9)
                print("| \(count) | \(policy.rawValue) | \(formatRate(rate)) | \(formatMicros(summary.p50)) | \(formatMicros(summary.p99)) | \(entries) |")
            }
        }
    }

    private static func formatRate(_ rate: Double) -> String {
        rate >= 1e6 ? "\(Double(Int(rate / 1e4)) / 100) M" : "\(Int(rate / 1e3)) k"
    }

    private static func formatMicros(_ nanoseconds: Double) -> String {
        nanoseconds < 1000 ? "\(Int(nanoseconds)) ns" : "\(Double(Int(nanoseconds / 10)) / 100) µs"
    }
}
