/// One conversation to replay: an optional system prompt, then the user's turns, each with how
/// many tokens to ask for in the answer. The answers themselves come from the engine at run time
/// and go back into the history, as they would for a real user, so each turn sends the whole
/// conversation so far and its prefix is exactly what the engine last saw.
public struct Conversation: Sendable, Equatable {
    public struct Turn: Sendable, Equatable {
        public var user: String
        public var answerTokens: Int
        public init(user: String, answerTokens: Int) {
            self.user = user
            self.answerTokens = answerTokens
        }
    }

    public var id: String
    public var system: String?
    public var turns: [Turn]

    public init(id: String, system: String? = nil, turns: [Turn]) {
        self.id = id
        self.system = system
        self.turns = turns
    }
}

/// Token counts for text when no tokenizer is at hand: about four bytes a token, which is what
/// BPE tokenizers of 7B-class models give for English and what `junction engine-sim` counts.
public enum TokenEstimate {
    public static func tokens(_ text: String) -> Int { max(1, (text.utf8.count + 3) / 4) }
}
