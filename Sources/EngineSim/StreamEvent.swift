import EngineModel

/// What a request handler receives from the runner: the engine's events, with a request's last
/// token and its finish joined, so the last chunk carries `finish_reason` as the engines' do.
enum StreamEvent: Sendable {
    case scheduled(cachedTokens: Int)
    case token(UInt32, finish: (FinishReason, TokenUsage)?)
    /// The request ended without a last token (aborted inside the engine).
    case ended(FinishReason, TokenUsage)
}
