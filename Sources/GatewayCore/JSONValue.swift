/// A parsed JSON document, as the gateway reads request bodies and usage objects: a plain Swift
/// value, built without Foundation (whose `JSONSerialization` builds an object graph of bridged
/// `NSDictionary`/`NSNumber` values; on the data path it cost more than the rest of the parse).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number as written; read it with `int` or `double`.
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    /// Members in document order. A key given twice keeps its last value on lookup, as most
    /// parsers (and Python's `json`, which OpenAI's servers run) do.
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member named `key` of an object (the last one if repeated); nil for other values.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last(where: { $0.key == key })?.value
    }

    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// An integer value: a number without a fraction that fits in `Int` (`16` and `16.0`, not `16.5`).
    public var int: Int? {
        if case .number(let number) = self { return number.int }
        return nil
    }

    public var array: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var isObject: Bool {
        if case .object = self { return true }
        return false
    }
}

/// A JSON number kept as its text, so an integer never passes through a `Double`.
public struct JSONNumber: Sendable, Equatable {
    public let text: String

    public init(text: String) { self.text = text }

    public var int: Int? {
        if let exact = Int(text) { return exact }
        guard let value = Double(text), value.rounded() == value, abs(value) < 9.2e18 else { return nil }
        return Int(value)
    }

    public var double: Double? { Double(text) }
}
