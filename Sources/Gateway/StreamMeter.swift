import GatewayCore
import NIOCore

/// Watches an answer go by: when its first byte came, and the token usage the engine reports
/// (in the last SSE chunk with `usage`, or in the JSON body).
struct StreamMeter {
    struct Usage: Equatable {
        var prompt = 0
        var completion = 0
        var cached = 0
    }

    let started: ContinuousClock.Instant
    private(set) var firstByte: Duration?
    private(set) var bytes = 0
    /// The tail of the answer: usage is near the end of it.
    private var tail: [UInt8] = []
    private static let tailLimit = 16 << 10

    init(started: ContinuousClock.Instant) { self.started = started }

    mutating func saw(_ chunk: ByteBuffer) {
        if firstByte == nil { firstByte = ContinuousClock.now - started }
        bytes += chunk.readableBytes
        tail.append(contentsOf: chunk.readableBytesView)
        if tail.count > 2 * Self.tailLimit { tail.removeFirst(tail.count - Self.tailLimit) }
    }

    /// Whether the answer so far ends with an event stream's terminal event, `data: [DONE]` and
    /// its blank line: after it the client has the whole answer.
    var endsWithTerminalEvent: Bool {
        var end = tail.count
        var newlines = 0
        while end > 0, tail[end - 1] == 0x0A || tail[end - 1] == 0x0D {
            if tail[end - 1] == 0x0A { newlines += 1 }
            end -= 1
        }
        guard newlines >= 2 else { return false }
        for line in [Array("data: [DONE]".utf8), Array("data:[DONE]".utf8)] where end >= line.count {
            let start = end - line.count
            if tail[start..<end].elementsEqual(line), start == 0 || tail[start - 1] == 0x0A { return true }
        }
        return false
    }

    /// The last `"usage": {...}` object in the answer, if any.
    var usage: Usage? {
        let key = Array("\"usage\"".utf8)
        guard let keyStart = Self.lastIndex(of: key, in: tail) else { return nil }
        var index = keyStart + key.count
        while index < tail.count, tail[index] != UInt8(ascii: "{") {
            if tail[index] == UInt8(ascii: "n") { return nil }  // "usage": null
            index += 1
        }
        var depth = 0
        var end = index
        while end < tail.count {
            if tail[end] == UInt8(ascii: "{") { depth += 1 }
            if tail[end] == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0 { break }
            }
            end += 1
        }
        guard end < tail.count, let object = try? JSONParser.parse(Array(tail[index...end])), object.isObject else { return nil }
        var usage = Usage()
        usage.prompt = object["prompt_tokens"]?.int ?? 0
        usage.completion = object["completion_tokens"]?.int ?? 0
        usage.cached = object["prompt_tokens_details"]?["cached_tokens"]?.int ?? 0
        return usage
    }

    private static func lastIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        return haystack.withUnsafeBufferPointer { hay in
            needle.withUnsafeBufferPointer { pin in
                var start = hay.count - pin.count
                while start >= 0 {
                    var matched = 0
                    while matched < pin.count, hay[start + matched] == pin[matched] { matched += 1 }
                    if matched == pin.count { return start }
                    start -= 1
                }
                return nil
            }
        }
    }
}
