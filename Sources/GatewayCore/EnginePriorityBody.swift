import Foundation

/// Sets a request body's `priority` field: the engine's own scheduling priority (vLLM with
/// `--scheduling-policy priority`: lower values are scheduled first and preempted last), which
/// the gateway derives from the request's priority class. The client's own value is replaced, so
/// a client cannot put itself ahead of the classes above it inside the engines.
///
/// Most bodies do not mention `priority`: the field is then spliced in before the closing brace,
/// leaving every other byte as the client sent it. Being the last key, it is the one the engines'
/// JSON parsers keep (Python's, which vLLM and SGLang use, keep the last of duplicate keys), even
/// against a key spelt with escapes (`"\u0070riority"`) that a byte search cannot see. A body that
/// does name `priority` plainly is parsed and written again, so it carries the key once.
public enum EnginePriorityBody {
    /// The body with `"priority": value`; nil when it is not a JSON object, or names `priority`
    /// and cannot be written again (numbers Foundation cannot represent).
    public static func apply(_ body: [UInt8], priority value: Int) -> [UInt8]? {
        guard let open = body.firstIndex(where: { !isWhitespace($0) }), body[open] == UInt8(ascii: "{"),
            let close = body.lastIndex(where: { !isWhitespace($0) }), close > open, body[close] == UInt8(ascii: "}")
        else { return nil }
        if !contains(body, Self.key) {
            let empty = body[(open + 1)..<close].allSatisfy(isWhitespace)
            let field = Array("\(empty ? "" : ",")\"priority\":\(value)".utf8)
            var out: [UInt8] = []
            out.reserveCapacity(body.count + field.count)
            out.append(contentsOf: body[..<close])
            out.append(contentsOf: field)
            out.append(contentsOf: body[close...])
            return out
        }
        guard var object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        object["priority"] = value
        // Checked first: writing an infinite or NaN number traps rather than throws.
        guard JSONSerialization.isValidJSONObject(object), let data = try? JSONSerialization.data(withJSONObject: object) else { return nil }
        return Array(data)
    }

    private static let key = Array("\"priority\"".utf8)

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
