import Foundation

/// Sets a request body's `priority` field: the engine's own scheduling priority (vLLM with
/// `--scheduling-policy priority`: lower values are scheduled first and preempted last), which
/// the gateway derives from the request's priority class. The client's own value is replaced, so
/// a client cannot put itself ahead of the classes above it inside the engines.
///
/// Most bodies do not mention `priority`: the field is then spliced in after the opening brace,
/// leaving every other byte as the client sent it. A body that does is parsed and written again.
public enum EnginePriorityBody {
    /// The body with `"priority": value`; nil when it is not a JSON object.
    public static func apply(_ body: [UInt8], priority value: Int) -> [UInt8]? {
        guard let open = body.firstIndex(where: { !isWhitespace($0) }), body[open] == UInt8(ascii: "{") else { return nil }
        if !contains(body, Self.key) {
            guard let next = body[(open + 1)...].firstIndex(where: { !isWhitespace($0) }) else { return nil }
            let field = Array("\"priority\":\(value)".utf8)
            var out: [UInt8] = []
            out.reserveCapacity(body.count + field.count + 1)
            out.append(contentsOf: body[...open])
            out.append(contentsOf: field)
            if body[next] != UInt8(ascii: "}") { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: body[(open + 1)...])
            return out
        }
        guard var object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        object["priority"] = value
        guard let data = try? JSONSerialization.data(withJSONObject: object) else { return nil }
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
