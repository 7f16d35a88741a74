/// What the client saw of one request: when it started, when the first token and the last byte
/// arrived (seconds from the start of the run), the token counts the engine reported, or why it
/// failed.
public struct RequestRecord: Sendable, Equatable, Codable {
    public var conversation: String
    public var turn: Int
    public var start: Double
    public var firstToken: Double?
    public var end: Double
    public var promptTokens: Int
    public var outputTokens: Int
    public var error: String?

    public init(
        conversation: String, turn: Int, start: Double, firstToken: Double?, end: Double, promptTokens: Int, outputTokens: Int,
        error: String? = nil
    ) {
        self.conversation = conversation
        self.turn = turn
        self.start = start
        self.firstToken = firstToken
        self.end = end
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.error = error
    }

    public var succeeded: Bool { error == nil }
    /// Seconds from sending to the first token.
    public var timeToFirstToken: Double? { firstToken.map { $0 - start } }
    /// Seconds per output token after the first (TPOT); nil with fewer than two tokens.
    public var timePerOutputToken: Double? {
        guard let firstToken, outputTokens > 1 else { return nil }
        return (end - firstToken) / Double(outputTokens - 1)
    }
}
