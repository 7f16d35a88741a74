import Foundation

/// A request the simulator refuses, with the HTTP status and the error `type` a real engine
/// would give it.
enum RequestError: Error, Sendable {
    case invalid(String, param: String? = nil)
    case modelNotFound(String)
    case tooLarge(limit: Int)
    case injected(status: Int)
    case unavailable(String)

    var status: Int {
        switch self {
        case .invalid: 400
        case .modelNotFound: 404
        case .tooLarge: 413
        case .injected(let status): status
        case .unavailable: 503
        }
    }

    var type: String {
        switch self {
        case .invalid: "BadRequestError"
        case .modelNotFound: "NotFoundError"
        case .tooLarge: "BadRequestError"
        case .injected(let status): status == 503 ? "ServiceUnavailableError" : "InternalServerError"
        case .unavailable: "ServiceUnavailableError"
        }
    }

    var message: String {
        switch self {
        case .invalid(let message, _): message
        case .modelNotFound(let model): "The model `\(model)` does not exist."
        case .tooLarge(let limit): "Request body is larger than \(limit) bytes."
        case .injected(let status): "Injected fault: the engine failed this request (HTTP \(status))."
        case .unavailable(let why): why
        }
    }

    var param: String? {
        switch self {
        case .invalid(_, let param): param
        case .modelNotFound: "model"
        default: nil
        }
    }
}

/// Reading numbers and booleans out of JSONSerialization's values. Foundation hands both back
/// as NSNumber (`1 as? Bool` succeeds), so a boolean is told apart by its Objective-C type code.
enum JSONValue {
    static func isBool(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    static func bool(_ value: Any) -> Bool? {
        isBool(value) ? (value as? Bool) : nil
    }

    static func double(_ value: Any) -> Double? {
        if isBool(value) { return nil }
        if let number = value as? Double { return number }
        if let number = value as? Int { return Double(number) }
        return nil
    }

    static func int(_ value: Any) -> Int? {
        guard let number = double(value), number.rounded() == number, abs(number) < 1e15 else { return nil }
        return Int(number)
    }
}
