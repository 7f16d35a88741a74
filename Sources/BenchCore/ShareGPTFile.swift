import Foundation

/// The ShareGPT format (`ShareGPT_V3_unfiltered_cleaned_split.json`): a JSON list of
/// `{"id": ..., "conversations": [{"from": "human" | "gpt" | "system", "value": ...}, ...]}`.
/// Reading keeps each human turn as a user turn and takes the answer's length from the gpt
/// turn that follows it; the answer's text is not replayed (the engine writes its own).
public enum ShareGPTFile {
    public struct FormatError: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// - Parameters:
    ///   - defaultAnswerTokens: the answer length for a human turn with no gpt turn after it.
    ///   - maxAnswerTokens: answers longer than this are asked for at this length.
    public static func parse(_ data: Data, defaultAnswerTokens: Int = 256, maxAnswerTokens: Int = 4096) throws(FormatError) -> [Conversation] {
        guard let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
            throw FormatError(description: "not a ShareGPT file: expected a JSON list of conversations")
        }
        var conversations: [Conversation] = []
        for (index, item) in list.enumerated() {
            guard let entry = item as? [String: Any], let messages = entry["conversations"] as? [Any] else {
                throw FormatError(description: "conversation \(index): expected an object with a \"conversations\" list")
            }
            let id = (entry["id"] as? String) ?? String(index)
            var conversation = Conversation(id: id, turns: [])
            var pendingUser: String?
            for (position, message) in messages.enumerated() {
                guard let message = message as? [String: Any], let from = message["from"] as? String,
                    let value = message["value"] as? String
                else {
                    throw FormatError(description: "conversation \(id), message \(position): expected {\"from\": ..., \"value\": ...}")
                }
                switch from {
                case "system":
                    if conversation.turns.isEmpty && pendingUser == nil { conversation.system = value }
                case "human", "user":
                    // Two human messages in a row (a seam where a long conversation was split) are one turn.
                    pendingUser = pendingUser.map { $0 + "\n" + value } ?? value
                default:  // gpt, chatgpt, bard, bing, assistant: an answer
                    guard let user = pendingUser else { continue }  // an answer with no question (the conversation starts with it)
                    conversation.turns.append(.init(user: user, answerTokens: min(maxAnswerTokens, TokenEstimate.tokens(value))))
                    pendingUser = nil
                }
            }
            if let user = pendingUser { conversation.turns.append(.init(user: user, answerTokens: defaultAnswerTokens)) }
            if !conversation.turns.isEmpty { conversations.append(conversation) }
        }
        return conversations
    }

    /// Writes conversations in the ShareGPT format; each gpt turn is `answer(conversation, turn)`.
    public static func render(_ conversations: [Conversation], answer: (Int, Int) -> String) -> Data {
        let list: [[String: Any]] = conversations.enumerated().map { index, conversation in
            var messages: [[String: String]] = []
            if let system = conversation.system { messages.append(["from": "system", "value": system]) }
            for (turn, item) in conversation.turns.enumerated() {
                messages.append(["from": "human", "value": item.user])
                messages.append(["from": "gpt", "value": answer(index, turn)])
            }
            return ["id": conversation.id, "conversations": messages]
        }
        // Sorted keys and no escaped slashes: the file diffs cleanly when regenerated.
        return (try? JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }
}
