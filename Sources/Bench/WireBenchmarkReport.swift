import Foundation

/// Runs the wire benchmarks and prints their figures as Markdown tables.
public enum WireBenchmarkReport {
    public static func run(codecIterations: Int, calls: Int) async throws {
        print("## Wire codec (libprotobuf-c through the generated Swift types), \(codecIterations) iterations each\n")
        print("| message | frame bytes | encode/s | decode/s | encode+decode/s | ns per encode+decode |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in WireCodecBenchmark.run(iterations: codecIterations) {
            print(String(format: "| %@ | %d | %.0f | %.0f | %.0f | %.0f |", r.name, r.bytes, r.encodePerSecond, r.decodePerSecond, r.roundTripPerSecond, 1e9 / r.roundTripPerSecond))
        }
        print("\n## Call round trip on 127.0.0.1, \(calls) calls per row (client and server in one process)\n")
        print("| path | in flight | calls/s | p50 | p90 | p99 | max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        let results = try await WireRoundTripBenchmark.run(calls: calls, inFlight: [1, 64])
        for r in results {
            print("| \(r.name) | \(r.inFlight) | \(String(format: "%.0f", r.callsPerSecond)) | \(formatMicros(r.latency.p50)) | \(formatMicros(r.latency.p90)) | \(formatMicros(r.latency.p99)) | \(formatMicros(r.latency.max)) |")
        }
        print("")
        for concurrency in [1, 64] {
            let ours = results.first { $0.inFlight == concurrency && $0.name == "junction schedule call" }!
            let tls = results.first { $0.inFlight == concurrency && $0.name.hasSuffix("mutual TLS") }!
            let base = results.first { $0.inFlight == concurrency && $0.name.hasPrefix("baseline") }!
            print(String(format: "in flight %d: junction/baseline p50 latency %.2fx, throughput %.2fx; TLS/plain p50 latency %.2fx, throughput %.2fx",
                         concurrency, ours.latency.p50 / base.latency.p50, ours.callsPerSecond / base.callsPerSecond,
                         tls.latency.p50 / ours.latency.p50, tls.callsPerSecond / ours.callsPerSecond))
        }
    }
}
