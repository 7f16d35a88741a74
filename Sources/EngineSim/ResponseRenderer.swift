import EngineModel

/// The JSON bodies of one request's answer in the dialect's shapes: whole responses, stream
/// chunks, the usage chunk. Shapes follow each engine's own protocol classes (vLLM's
/// `CompletionResponse`/`ChatCompletionResponse` and their stream variants, SGLang's
/// equivalents); Docs/engine-sim.md lists the sources.
struct ResponseRenderer: Sendable {
    let dialect: Dialect
    let kind: InferenceRequest.Kind
    let model: String
    let id: String
    let created: Int

    init(dialect: Dialect, kind: InferenceRequest.Kind, model: String, requestNumber: UInt64, created: Int) {
        self.dialect = dialect
        self.kind = kind
        self.model = model
        let hex = String(requestNumber, radix: 16)
        let suffix = String(repeating: "0", count: max(0, 16 - hex.count)) + hex
        switch (dialect, kind) {
        case (.sglang, _): id = suffix + String(created, radix: 16)
        case (_, .completion): id = "cmpl-" + suffix
        case (_, .chat): id = "chatcmpl-" + suffix
        }
        self.created = created
    }

    private var object: String { kind == .completion ? "text_completion" : "chat.completion" }
    private var head: String {
        "{\"id\":\"\(id)\",\"object\":\"\(kind == .completion ? "text_completion" : "chat.completion.chunk")\","
            + "\"created\":\(created),\"model\":\(JSONText.string(model)),"
    }

    func usage(_ usage: TokenUsage) -> String {
        "{\"prompt_tokens\":\(usage.promptTokens),\"total_tokens\":\(usage.promptTokens + usage.completionTokens),"
            + "\"completion_tokens\":\(usage.completionTokens),"
            + "\"prompt_tokens_details\":{\"cached_tokens\":\(usage.cachedTokens)}}"
    }

    private func finishFields(_ reason: FinishReason?) -> String {
        let finish = reason.map { "\"\($0.rawValue)\"" } ?? "null"
        switch dialect {
        case .sglang:
            // SGLang names the matched stop: the EOS token id when the model stopped by itself.
            return "\"finish_reason\":\(finish),\"matched_stop\":\(reason == .stop ? "151643" : "null")"
        case .vllm, .bladellm:
            return "\"finish_reason\":\(finish),\"stop_reason\":null"
        }
    }

    /// The whole answer of a non-streamed request.
    /// `kvTransferParams`: raw JSON for vLLM's `kv_transfer_params` (a prefill leg's answer).
    func full(text: String, reason: FinishReason, usage: TokenUsage, kvTransferParams: String? = nil) -> String {
        var body = "{\"id\":\"\(id)\",\"object\":\"\(object)\",\"created\":\(created),\"model\":\(JSONText.string(model)),\"choices\":[{\"index\":0,"
        switch kind {
        case .completion:
            body += "\"text\":\(JSONText.string(text)),\"logprobs\":null,\(finishFields(reason))"
            if dialect != .sglang { body += ",\"prompt_logprobs\":null" }
        case .chat:
            switch dialect {
            case .sglang:
                body += "\"message\":{\"role\":\"assistant\",\"content\":\(JSONText.string(text)),\"reasoning_content\":null,\"tool_calls\":null},"
            case .vllm, .bladellm:
                body += "\"message\":{\"role\":\"assistant\",\"content\":\(JSONText.string(text)),\"refusal\":null,\"annotations\":null,"
                    + "\"audio\":null,\"function_call\":null,\"tool_calls\":[],\"reasoning_content\":null},"
            }
            body += "\"logprobs\":null,\(finishFields(reason))"
        }
        body += "}],"
        if dialect != .sglang { body += "\"service_tier\":null,\"system_fingerprint\":null," }
        body += "\"usage\":\(self.usage(usage))"
        if dialect != .sglang {
            if kind == .chat { body += ",\"prompt_logprobs\":null" }
            body += ",\"kv_transfer_params\":\(kvTransferParams ?? "null")"
        }
        return body + "}"
    }

    /// The first chunk of a chat stream: the assistant role, no content yet.
    func roleChunk(continuousUsage: TokenUsage?) -> String {
        head + "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]"
            + usageTail(continuousUsage) + "}"
    }

    /// One stream chunk carrying a token's text, and the finish reason on the last one.
    func chunk(text: String, reason: FinishReason?, continuousUsage: TokenUsage?) -> String {
        var chunk = head + "\"choices\":[{\"index\":0,"
        switch kind {
        case .completion: chunk += "\"text\":\(JSONText.string(text)),"
        case .chat: chunk += "\"delta\":{\"content\":\(JSONText.string(text))},"
        }
        chunk += "\"logprobs\":null,"
        if reason == nil, dialect != .sglang {
            chunk += "\"finish_reason\":null"
        } else {
            chunk += finishFields(reason)
        }
        return chunk + "}]" + usageTail(continuousUsage) + "}"
    }

    /// The last chunk when `stream_options.include_usage` is set: no choices, the usage.
    func usageChunk(_ usage: TokenUsage) -> String {
        head + "\"choices\":[],\"usage\":\(self.usage(usage))}"
    }

    /// vLLM writes completion chunks whole (`"usage": null` included) but chat chunks with only
    /// the fields set; SGLang writes every chunk whole.
    private func usageTail(_ usage: TokenUsage?) -> String {
        if let usage { return ",\"usage\":\(self.usage(usage))" }
        return dialect == .sglang || kind == .completion ? ",\"usage\":null" : ""
    }

    /// An error body in the dialect's shape.
    static func error(_ error: RequestError, dialect: Dialect) -> String {
        let fields = "\"message\":\(JSONText.string(error.message)),\"type\":\"\(error.type)\","
            + "\"param\":\(JSONText.optionalString(error.param)),\"code\":\(error.status)"
        switch dialect {
        case .vllm, .bladellm: return "{\"error\":{\(fields)}}"
        case .sglang: return "{\"object\":\"error\",\(fields)}"
        }
    }
}
