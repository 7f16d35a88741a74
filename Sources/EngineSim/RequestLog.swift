import Foundation

/// `engine-sim --request-log FILE`: one JSON line per request when its first token is delivered,
/// saying what its time to first token was made of (waiting for a step, the prompt it computed,
/// the step it shared), so a benchmark's tail can be traced to where routers sent each request.
/// Wall-clock seconds, so the logs of several engines line up.
struct RequestLog {
    private let handle: FileHandle

    struct CannotCreate: Error, CustomStringConvertible {
        var path: String
        var description: String { "engine-sim: cannot create the request log \(path)" }
    }

    init(path: String) throws(CannotCreate) {
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = try? FileHandle(forWritingTo: URL(fileURLWithPath: path))
        else { throw CannotCreate(path: path) }
        self.handle = handle
    }

    struct Line: Encodable {
        /// Wall-clock seconds when the request reached the engine.
        var submitted: Double
        var promptTokens: Int
        /// A hash of the prompt's first 64 tokens: which requests share a system prompt.
        var promptHead: String
        var cachedTokens: Int
        /// Requests waiting and running in the engine as it arrived.
        var waitingAtArrival: Int
        var runningAtArrival: Int
        var queueMs: Double
        var ttftMs: Double
        /// The step that produced the first token: its prompt tokens computed (every request's)
        /// and its sequences.
        var stepPrefillTokens: Int
        var stepSequences: Int
    }

    /// FNV-1a over the first 64 tokens, in hex.
    static func head(of tokens: [UInt32]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for token in tokens.prefix(64) {
            hash = (hash ^ UInt64(token)) &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    func write(_ line: Line) {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard var data = try? encoder.encode(line) else { return }
        data.append(0x0A)
        handle.write(data)
    }
}
