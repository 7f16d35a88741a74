/// `${NAME}` in the config file's string values becomes the environment variable NAME, so one
/// file (a Kubernetes ConfigMap, a file baked into an image) holds no secret and no per-host
/// value: `"secret": "${JUNCTION_SECRET}"`, `"address": "${POD_IP}:7100"`,
/// `"listen": "${JUNCTION_LISTEN:-0.0.0.0:7100}"` (a default when unset or empty).
///
/// Only string values change: a value can neither break the JSON nor become a key, and a number
/// stays a number (a port that varies goes in an address string). `$${` is a literal `${`. A
/// variable that is not set, or a `${` that does not close on a name, stops start-up with the
/// key that holds it (every such key at once), because an empty secret or address would fail
/// later and far from here. Every process reads the whole file, so a variable only one kind of
/// process sets needs a default in the others.
public enum EnvironmentSubstitution {
    public static func apply(toObject object: [String: Any], environment: [String: String]) throws(ConfigError) -> [String: Any] {
        var out: [String: Any] = [:]
        var errors: [ConfigError] = []
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            do throws(ConfigError) { out[name] = try apply(value, key: name, environment: environment) } catch { errors.append(error) }
        }
        guard let first = errors.first else { return out }
        throw ConfigError(key: first.key, reason: ([first.reason] + errors.dropFirst().map(\.description)).joined(separator: "; "))
    }

    public static func apply(_ value: Any, key: String = "", environment: [String: String]) throws(ConfigError) -> Any {
        switch value {
        case let text as String:
            return try substitute(text, key: key, environment: environment)
        case let object as [String: Any]:
            var out: [String: Any] = [:]
            for (name, inner) in object { out[name] = try apply(inner, key: key.isEmpty ? name : key + "." + name, environment: environment) }
            return out
        case let list as [Any]:
            var out: [Any] = []
            for (index, inner) in list.enumerated() { out.append(try apply(inner, key: "\(key)[\(index)]", environment: environment)) }
            return out
        default:
            return value
        }
    }

    public static func substitute(_ text: String, key: String, environment: [String: String]) throws(ConfigError) -> String {
        guard text.contains("$") else { return text }
        var out = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.hasPrefix("${") {
                // `$${`: the literal text `${`.
                out += "${"
                rest = after.dropFirst(2)
            } else if after.hasPrefix("{") {
                guard let close = after.firstIndex(of: "}") else {
                    throw ConfigError(key: key, reason: "'${' without a closing '}' (write '$${' for a literal '${')")
                }
                let inside = String(after[after.index(after: after.startIndex)..<close])
                // `${NAME:-default}`: the default when NAME is unset or empty, as in a shell.
                let parts = inside.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(parts[0])
                let fallback = parts.count == 2 ? String(parts[1]) : nil
                guard isName(name) else {
                    throw ConfigError(key: key, reason: "'${\(inside)}' does not name an environment variable (letters, digits and '_', not starting with a digit)")
                }
                if let value = environment[name], !(value.isEmpty && fallback != nil) {
                    out += value
                } else if let fallback {
                    out += fallback
                } else {
                    throw ConfigError(key: key, reason: "the environment variable \(name) (named as ${\(name)}) is not set")
                }
                rest = after[after.index(after: close)...]
            } else {
                out += "$"
                rest = after
            }
        }
        return out + rest
    }

    private static func isName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") }
    }
}
