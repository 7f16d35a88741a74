/// An error as OpenAI's API shapes it: `{"error": {"message", "type", "param", "code"}}`, with
/// the HTTP status it goes with.
public struct OpenAIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds for a `Retry-After` header.
    public var retryAfterSeconds: Int?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil, retryAfterSeconds: Int? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(status) \(type): \(message)" }

    public static func invalidRequest(_ message: String, param: String? = nil) -> OpenAIError {
        OpenAIError(status: 400, message: message, type: "invalid_request_error", param: param)
    }
    public static func unauthorized() -> OpenAIError {
        OpenAIError(
            status: 401, message: "Incorrect API key provided. Send it as 'Authorization: Bearer KEY'.", type: "invalid_request_error",
            code: "invalid_api_key")
    }
    public static func modelNotFound(_ model: String) -> OpenAIError {
        OpenAIError(
            status: 404, message: "The model '\(model)' does not exist or no instance serving it is up.", type: "invalid_request_error",
            param: "model", code: "model_not_found")
    }
    /// The model is served, but no instance of it is up right now: clients retry 5xx with backoff.
    public static func noInstanceUp(_ model: String) -> OpenAIError {
        OpenAIError(
            status: 503, message: "No instance serving the model '\(model)' is up; retry later.", type: "server_error",
            code: "no_instance_up", retryAfterSeconds: 1)
    }
    public static func tooLarge(limit: Int) -> OpenAIError {
        OpenAIError(status: 413, message: "The request body is larger than \(limit) bytes.", type: "invalid_request_error")
    }
    public static func queueFull(size: Int) -> OpenAIError {
        OpenAIError(
            status: 429, message: "Every engine is busy and \(size) requests are already waiting; retry later.", type: "rate_limit_error",
            code: "queue_full", retryAfterSeconds: 1)
    }
    /// The full queue dropped a waiting request for one of a higher class or of a tenant with
    /// less of its share.
    public static func shed() -> OpenAIError {
        OpenAIError(
            status: 429, message: "Every engine is busy and the wait queue is full; this request gave way to ones of a higher priority or a tenant with less of its share. Retry later.",
            type: "rate_limit_error", code: "request_shed", retryAfterSeconds: 1)
    }
    /// A tenant's limit refuses the request: `kind` names it (concurrency, requests, tokens).
    public static func limitReached(tenant: String, kind: String, limit: Int, retryAfterSeconds: Int) -> OpenAIError {
        let what =
            switch kind {
            case "concurrency": "\(limit) requests at once"
            case "requests": "\(limit) requests per minute"
            default: "\(limit) tokens per minute"
            }
        return OpenAIError(
            status: 429, message: "Rate limit reached for tenant '\(tenant)': \(what). Retry after \(retryAfterSeconds) s.",
            type: "rate_limit_error", code: "rate_limit_\(kind)", retryAfterSeconds: retryAfterSeconds)
    }
    public static func waitTimedOut(seconds: Double) -> OpenAIError {
        OpenAIError(
            status: 503, message: "No engine had room for this request within \(seconds) s; retry later.", type: "server_error",
            code: "schedule_timeout", retryAfterSeconds: 1)
    }
    public static func upstream(_ message: String, status: Int = 502) -> OpenAIError {
        OpenAIError(status: status, message: message, type: "server_error", code: "upstream_error")
    }

    /// The JSON body.
    public var json: String {
        var fields = ["\"message\":\(Self.quote(message))", "\"type\":\(Self.quote(type))"]
        fields.append("\"param\":" + (param.map(Self.quote) ?? "null"))
        fields.append("\"code\":" + (code.map(Self.quote) ?? "null"))
        return "{\"error\":{" + fields.joined(separator: ",") + "}}"
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
