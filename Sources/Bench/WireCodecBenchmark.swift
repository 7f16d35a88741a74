import Foundation
import NIOCore
import Wire

/// Encode and decode speed of typical frames through libprotobuf-c.
public enum WireCodecBenchmark {
    public struct Result: Sendable {
        public let name: String
        public let bytes: Int
        public let encodePerSecond: Double
        public let decodePerSecond: Double
        public let roundTripPerSecond: Double
    }

    /// A schedule request as a gateway sends it: 64 chained prefix hashes (a ~16 k-character prompt
    /// in 256-character chunks), the model, ids and limits.
    public static let scheduleRequest = Envelope(callID: 12345, body: .scheduleRequest(ScheduleRequest(
        requestID: "gw-1-000000012345", model: "deepseek-r1-distill-qwen-7b",
        prefixHashes: (0..<64).map { UInt64($0 + 1) &* 0x9E37_79B9_7F4A_7C15 }, promptTokens: 1790, maxTokens: 1320,
        sessionKey: "conversation-42", chunkChars: 256)))

    /// An agent's load report.
    public static let loadReport = Envelope(callID: 777, body: .loadReport(LoadReport(
        instanceID: "vllm-7b-0", sequence: 123_456, health: .healthy, running: 48, waiting: 6, kvUsage: 0.8125,
        promptTokensPerS: 14_336.5, generationTokensPerS: 10_631.25, prefixCacheHitRate: 0.37, kvCapacityTokens: 1_048_576,
        scrapeAgeMs: 120, sentUnixMs: 1_764_000_000_000)))

    public static func run(iterations: Int) -> [Result] {
        [measure("schedule request (64 hashes)", scheduleRequest, iterations),
         measure("load report", loadReport, iterations)]
    }

    static func measure(_ name: String, _ envelope: Envelope, _ iterations: Int) -> Result {
        let clock = ContinuousClock()
        var buffer = ByteBufferAllocator().buffer(capacity: 4096)
        var sink = 0
        // Warm up allocator and caches.
        for _ in 0..<min(iterations, 10_000) {
            buffer.clear()
            sink &+= envelope.serialize(into: &buffer)
        }
        let encode = clock.measure {
            for _ in 0..<iterations {
                buffer.clear()
                sink &+= envelope.serialize(into: &buffer)
            }
        }
        buffer.clear()
        let bytes = envelope.serialize(into: &buffer)
        let decode = clock.measure {
            for _ in 0..<iterations {
                if let decoded = try? Envelope(buffer: buffer) { sink &+= Int(decoded.callID) }
            }
        }
        let both = clock.measure {
            for _ in 0..<iterations {
                buffer.clear()
                envelope.serialize(into: &buffer)
                if let decoded = try? Envelope(buffer: buffer) { sink &+= Int(decoded.callID) }
            }
        }
        precondition(sink != 42, "keeps the loops from being optimised away")
        let n = Double(iterations)
        return Result(
            name: name, bytes: bytes,
            encodePerSecond: n / (encode.nanoseconds / 1e9),
            decodePerSecond: n / (decode.nanoseconds / 1e9),
            roundTripPerSecond: n / (both.nanoseconds / 1e9))
    }
}
