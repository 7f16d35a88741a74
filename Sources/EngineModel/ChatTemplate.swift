/// Renders chat messages into one prompt the way ChatML-style templates (Qwen, and so the
/// seed's Distill-Qwen-7B and QwQ-32B) do, ending with the assistant's generation prompt.
///
/// The content of each message starts on a line of its own, so the previous answer inside a
/// later turn's history tokenizes exactly as it was generated (see `StandInTokenizer`).
public enum ChatTemplate {
    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    public static func render(_ messages: [Message], addGenerationPrompt: Bool = true) -> String {
        var text = ""
        for message in messages {
            text += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n"
        }
        if addGenerationPrompt { text += "<|im_start|>assistant\n" }
        return text
    }
}
