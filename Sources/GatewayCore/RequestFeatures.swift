/// What the gateway reads of a request (without changing it): the model, whether it streams,
/// and the routing features the scheduler decides on.
public struct RequestFeatures: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case chat, completion, other }

    public var kind: Kind
    public var model: String
    public var stream: Bool
    /// The prompt as text every turn of a conversation extends: each chat message as
    /// `<|role|>\n` + its text + `\n`; a completion prompt as given; token ids as decimal text.
    public var canonicalPrompt: [UInt8]
    public var prefixHashes: [UInt64]
    public var promptTokens: Int
    public var maxTokens: Int?
    /// Chat: the chunks of `prefixHashes` spanned by the last assistant message (from the chunk
    /// its header starts in to the last full chunk it reaches), so the scheduler can credit the
    /// instance that generated it with its KV.
    public var lastAnswerChunks: Range<Int>?
    /// Whether a prefill/decode hand-off can carry the request: one prompt and one choice (a
    /// prefill answer's hand-off parameters describe one prompt's KV).
    public var splittable = true
    /// Chat: a key of the whole canonical prompt (`PrefixHasher.key`), by which the leader's
    /// reuse grant for this request is kept; nil beyond `max_prefix_chunks`.
    public var promptKey: UInt64?
    /// Chat with an assistant message: the key of the canonical prompt in front of the last one,
    /// which is the previous turn's whole prompt when this request continues a conversation: the
    /// grant it may use (`ReuseGrants`) is kept under it.
    public var previousTurnKey: UInt64?
    /// The conversation the request belongs to, for session affinity: the OpenAI `user` field (an
    /// `x-session-id` header takes its place, `sessionKey(header:)`); nil when there is none.
    public var sessionKey: String?

    /// Reads an OpenAI request body. `kind` comes from the route.
    /// `maxPrefixChunks`: the most prefix hashes kept (`llm_gateway.max_prefix_chunks`); a
    /// prompt beyond is served whole but not routed on.
    /// The most completion tokens a request is counted as asking for: more than any model
    /// generates, small enough that sums of them cannot overflow.
    public static let largestCountedMaxTokens = 1 << 30

    public static func read(_ body: [UInt8], kind: Kind, chunkBytes: Int, maxPrefixChunks: Int = .max) throws(OpenAIError) -> RequestFeatures {
        let object: JSONValue
        do { object = try JSONParser.parse(body) } catch {
            throw .invalidRequest("The request body is not valid JSON: \(error)")
        }
        guard object.isObject else { throw OpenAIError.invalidRequest("The request body must be a JSON object.") }
        guard let model = object["model"]?.string, !model.isEmpty else {
            throw .invalidRequest("you must provide a model parameter", param: "model")
        }
        var features = RequestFeatures(
            kind: kind, model: model, stream: object["stream"].flatMap(Self.flag) ?? false, canonicalPrompt: [], prefixHashes: [],
            promptTokens: 0)
        if let limit = (object["max_completion_tokens"] ?? object["max_tokens"])?.int {
            // The engine judges the value; the gateway only counts it (flow control's estimate),
            // so any integer a client sends must count without overflow.
            features.maxTokens = min(max(0, limit), Self.largestCountedMaxTokens)
        }
        if let user = object["user"]?.string { features.sessionKey = Self.sessionKey(user) }
        for key in ["n", "best_of"] where (object[key]?.int ?? 1) > 1 { features.splittable = false }
        var tokenIDs = 0
        var lastAnswerStart: Int?
        switch kind {
        case .chat:
            guard let messages = object["messages"]?.array, !messages.isEmpty, messages.allSatisfy(\.isObject) else {
                throw .invalidRequest("'messages' must be a non-empty array of message objects", param: "messages")
            }
            var lastAnswer: Range<Int>?
            for message in messages {
                let role = message["role"]?.string ?? "user"
                let start = features.canonicalPrompt.count
                features.canonicalPrompt += Array("<|\(role)|>\n".utf8)
                features.canonicalPrompt += Array(Self.text(of: message["content"]).utf8)
                features.canonicalPrompt.append(UInt8(ascii: "\n"))
                if role == "assistant" { lastAnswer = start..<features.canonicalPrompt.count }
            }
            lastAnswerStart = lastAnswer?.lowerBound
            if let lastAnswer, chunkBytes > 0 {
                features.lastAnswerChunks = (lastAnswer.lowerBound / chunkBytes)..<max(lastAnswer.lowerBound / chunkBytes, lastAnswer.upperBound / chunkBytes)
            }
        case .completion:
            let prompt = object["prompt"]
            if let text = prompt?.string {
                features.canonicalPrompt = Array(text.utf8)
            } else if let items = prompt?.array, let texts = Self.all(items, \.string) {
                features.canonicalPrompt = Array(texts.joined(separator: "\n").utf8)
                features.splittable = texts.count == 1
            } else if let items = prompt?.array, let ids = Self.all(items, \.int) {
                tokenIDs = ids.count
                features.canonicalPrompt = Array(ids.map(String.init).joined(separator: " ").utf8)
            } else if let items = prompt?.array, let batches = Self.all(items, { $0.array.flatMap { Self.all($0, \.int) } }) {
                tokenIDs = batches.reduce(0) { $0 + $1.count }
                features.splittable = batches.count == 1
                features.canonicalPrompt = Array(batches.map { $0.map(String.init).joined(separator: " ") }.joined(separator: "\n").utf8)
            } else {
                throw .invalidRequest("'prompt' must be a string, an array of strings, or token ids", param: "prompt")
            }
        case .other:
            break
        }
        let seed = PrefixHasher.seed(model: features.model)
        features.prefixHashes = PrefixHasher.chain(features.canonicalPrompt, chunkBytes: chunkBytes, maxChunks: maxPrefixChunks, seed: seed)
        if kind == .chat {
            features.promptKey = PrefixHasher.key(
                of: features.canonicalPrompt, length: features.canonicalPrompt.count, chain: features.prefixHashes, chunkBytes: chunkBytes, seed: seed)
            if let start = lastAnswerStart {
                features.previousTurnKey = PrefixHasher.key(
                    of: features.canonicalPrompt, length: start, chain: features.prefixHashes, chunkBytes: chunkBytes, seed: seed)
            }
        }
        // About four bytes a token for text; exact for token ids.
        features.promptTokens = tokenIDs > 0 ? tokenIDs : (features.canonicalPrompt.count + 3) / 4
        return features
    }

    /// A session key as the scheduler takes it: at most 128 bytes without control characters, so
    /// a longer or odder one is replaced by its FNV-1a 64 hash (the same key, the same session).
    /// nil for an empty one.
    public static func sessionKey(_ raw: String) -> String? {
        guard !raw.isEmpty else { return nil }
        let bytes = Array(raw.utf8)
        if bytes.count <= 128, !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return raw }
        return "fnv64:" + String(PrefixHasher.fnv1a(bytes), radix: 16)
    }

    /// A message's content: a string, or the text of its parts (other parts by their URL or type).
    static func text(of content: JSONValue?) -> String {
        if let text = content?.string { return text }
        guard let parts = content?.array, parts.allSatisfy(\.isObject) else { return "" }
        return parts.map { part in
            if let text = part["text"]?.string { return text }
            if let url = part["image_url"]?["url"]?.string { return url }
            return part["type"]?.string.map { "<\($0)>" } ?? ""
        }.joined(separator: "\n")
    }

    /// `stream` as OpenAI's servers read it: a boolean, or 0/1 (pydantic's lax mode).
    static func flag(_ value: JSONValue) -> Bool? {
        if let flag = value.bool { return flag }
        switch value.int {
        case 0: return false
        case 1: return true
        default: return nil
        }
    }

    /// Every item read by `read`, or nil if any item is not of that kind.
    static func all<T>(_ items: [JSONValue], _ read: (JSONValue) -> T?) -> [T]? {
        var values: [T] = []
        values.reserveCapacity(items.count)
        for item in items {
            guard let value = read(item) else { return nil }
            values.append(value)
        }
        return values
    }
}
