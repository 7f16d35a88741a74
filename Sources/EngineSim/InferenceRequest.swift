import EngineModel
import Foundation

/// An OpenAI-style completion or chat request, read the way the engines read it: the prompt
/// (text, or token ids for completions), the output limits and the streaming options. Fields the
/// simulator has no use for (temperature, top_p, stop, ...) are accepted and ignored.
struct InferenceRequest: Sendable {
    enum Kind: Sendable { case completion, chat }

    var kind: Kind
    var model: String
    var promptTokens: [UInt32]
    var maxTokens: Int?
    var ignoreEOS: Bool
    var seed: UInt64?
    var stream: Bool
    var includeUsage: Bool
    var continuousUsage: Bool
    /// vLLM's `priority` (lower is sooner); only a policy-`priority` engine takes one but 0.
    var priority = 0
    /// Prefill/decode hand-off fields, when the request carries them.
    var handoff: Handoff?

    static func parse(_ body: [UInt8], kind: Kind) throws(RequestError) -> InferenceRequest {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
                throw RequestError.invalid("The request body must be a JSON object.")
            }
            object = parsed
        } catch let error as RequestError {
            throw error
        } catch {
            throw .invalid("The request body is not valid JSON: \(error.localizedDescription)")
        }
        guard let model = object["model"] as? String, !model.isEmpty else {
            throw .invalid("Field required: model (a string)", param: "model")
        }
        var request = InferenceRequest(
            kind: kind, model: model, promptTokens: [], maxTokens: nil, ignoreEOS: false, seed: nil,
            stream: false, includeUsage: false, continuousUsage: false)
        switch kind {
        case .completion: request.promptTokens = try completionPrompt(object["prompt"])
        case .chat: request.promptTokens = try chatPrompt(object["messages"])
        }
        for key in ["max_tokens", "max_completion_tokens"] {
            guard let value = object[key], !(value is NSNull) else { continue }
            guard let limit = JSONValue.int(value), limit >= 1 else {
                throw .invalid("\(key) must be an integer of at least 1", param: key)
            }
            request.maxTokens = limit
        }
        if let value = object["n"], !(value is NSNull) {
            guard JSONValue.int(value) == 1 else {
                throw .invalid("The simulator generates one choice per request (n must be 1)", param: "n")
            }
        }
        request.ignoreEOS = try flag(object, "ignore_eos")
        if let minTokens = object["min_tokens"].flatMap(JSONValue.int), minTokens > 0, request.maxTokens == minTokens {
            request.ignoreEOS = true
        }
        if let value = object["seed"], !(value is NSNull) {
            guard let seed = JSONValue.int(value) else { throw .invalid("seed must be an integer", param: "seed") }
            request.seed = UInt64(bitPattern: Int64(seed))
        }
        if let value = object["priority"], !(value is NSNull) {
            guard let priority = JSONValue.int(value) else { throw .invalid("priority must be an integer", param: "priority") }
            request.priority = priority
        }
        request.stream = try flag(object, "stream")
        if let options = object["stream_options"], !(options is NSNull) {
            guard let options = options as? [String: Any] else {
                throw .invalid("stream_options must be an object", param: "stream_options")
            }
            guard request.stream else {
                throw .invalid("Stream options can only be defined when `stream=True`.", param: "stream_options")
            }
            request.includeUsage = try flag(options, "include_usage")
            request.continuousUsage = try flag(options, "continuous_usage_stats")
        }
        request.handoff = try Handoff.parse(object)
        return request
    }

    private static func flag(_ object: [String: Any], _ key: String) throws(RequestError) -> Bool {
        guard let value = object[key], !(value is NSNull) else { return false }
        guard let flag = JSONValue.bool(value) else {
            throw .invalid("\(key) must be true or false", param: key)
        }
        return flag
    }

    private static func completionPrompt(_ value: Any?) throws(RequestError) -> [UInt32] {
        func tokens(_ array: [Any]) throws(RequestError) -> [UInt32]? {
            var ids: [UInt32] = []
            for element in array {
                guard let id = JSONValue.int(element) else { return nil }
                guard id >= 0, id < Int(UInt32.max) else { throw .invalid("Token id \(id) is out of range", param: "prompt") }
                ids.append(UInt32(id))
            }
            return ids
        }
        switch value {
        case let text as String:
            return StandInTokenizer.tokenize(text)
        case let array as [Any] where array.count == 1:
            if let text = array[0] as? String { return StandInTokenizer.tokenize(text) }
            if let inner = array[0] as? [Any], let ids = try tokens(inner) { return ids }
            if let ids = try tokens(array) { return ids }
        case let array as [Any] where !array.isEmpty:
            if let ids = try tokens(array) { return ids }
            throw .invalid("The simulator serves one prompt per request; send a batch as separate requests", param: "prompt")
        default:
            break
        }
        throw .invalid("prompt must be a string, a list of token ids, or a list holding one of those", param: "prompt")
    }

    private static func chatPrompt(_ value: Any?) throws(RequestError) -> [UInt32] {
        guard let messages = value as? [Any], !messages.isEmpty else {
            throw .invalid("messages must be a non-empty list", param: "messages")
        }
        var rendered: [ChatTemplate.Message] = []
        for (index, element) in messages.enumerated() {
            guard let message = element as? [String: Any], let role = message["role"] as? String else {
                throw .invalid("messages[\(index)] must be an object with a role", param: "messages")
            }
            rendered.append(.init(role: role, content: try content(message["content"], index: index)))
        }
        return StandInTokenizer.tokenize(ChatTemplate.render(rendered))
    }

    /// A message's content: a string, or a list of parts of which the text parts count.
    private static func content(_ value: Any?, index: Int) throws(RequestError) -> String {
        switch value {
        case nil, is NSNull: return ""
        case let text as String: return text
        case let parts as [Any]:
            var text = ""
            for part in parts {
                guard let part = part as? [String: Any] else {
                    throw .invalid("messages[\(index)].content parts must be objects", param: "messages")
                }
                if part["type"] as? String == "text", let piece = part["text"] as? String { text += piece }
            }
            return text
        default:
            throw .invalid("messages[\(index)].content must be a string or a list of parts", param: "messages")
        }
    }
}
