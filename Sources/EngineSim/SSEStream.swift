import EngineModel
import Hummingbird
import NIOCore

/// Writes one request's answer as server-sent events, chunk by chunk as the steps produce
/// tokens: `data: {json}\n\n` per chunk, the usage chunk when asked for, then `data: [DONE]`.
enum SSEStream {
    struct CutStream: Error {}

    static func write(
        events: AsyncStream<StreamEvent>, request: InferenceRequest, renderer: ResponseRenderer, cutAfter: Int?,
        lingerAfterDone: Duration? = nil, to writer: inout any ResponseBodyWriter
    ) async throws {
        var sent = 0
        var usageSoFar = TokenUsage(promptTokens: request.promptTokens.count, completionTokens: 0, cachedTokens: 0)
        func continuous() -> TokenUsage? { request.continuousUsage ? usageSoFar : nil }
        if request.kind == .chat {
            try await writer.write(event(renderer.roleChunk(continuousUsage: continuous())))
        }
        var finalUsage: TokenUsage?
        loop: for await streamEvent in events {
            switch streamEvent {
            case .scheduled(let cached):
                usageSoFar.cachedTokens = cached
            case .token(let token, let finish):
                // Cut when the token after the allowed ones is due: 0 cuts before the first event
                // of a completion (a chat has sent its role chunk).
                if let cutAfter, sent >= cutAfter { throw CutStream() }
                usageSoFar.completionTokens += 1
                if let (_, usage) = finish { usageSoFar = usage }
                try await writer.write(
                    event(renderer.chunk(text: Vocabulary.text(of: token), reason: finish?.0, continuousUsage: continuous())))
                sent += 1
                if let (_, usage) = finish {
                    finalUsage = usage
                    break loop
                }
            case .ended(let reason, let usage):
                try await writer.write(event(renderer.chunk(text: "", reason: reason, continuousUsage: continuous())))
                finalUsage = usage
                break loop
            }
        }
        guard let finalUsage else { throw CutStream() }
        if request.includeUsage { try await writer.write(event(renderer.usageChunk(finalUsage))) }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
        if let lingerAfterDone { try await Task.sleep(for: lingerAfterDone) }
        try await writer.finish(nil)
    }

    private static func event(_ json: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.utf8.count + 8)
        buffer.writeString("data: ")
        buffer.writeString(json)
        buffer.writeString("\n\n")
        return buffer
    }
}
