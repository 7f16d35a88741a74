import Foundation

/// A config key that is missing or wrong, and what it should be: `config: scheduler.tick_ms:
/// an integer from 5 to 5000`.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public var key: String
    public var reason: String
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }
    public var description: String { "config: \(key): \(reason)" }
}

/// Reading the JSON config file every Junction process shares (Docs/configuration.md).
public enum ConfigFile {
    /// Reads and parses the file, then puts the environment's values in for `${NAME}` in its
    /// strings (`EnvironmentSubstitution`).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: path, reason: "cannot read the file")
        }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigError(key: path, reason: "not valid JSON: \(error.localizedDescription)")
        }
        guard let object = parsed as? [String: Any] else { throw ConfigError(key: path, reason: "the file must hold a JSON object") }
        return try EnvironmentSubstitution.apply(toObject: object, environment: environment)
    }

    public static func object(_ root: [String: Any], _ key: String, required: Bool) throws(ConfigError) -> [String: Any]? {
        guard let value = root[key] else {
            if required { throw ConfigError(key: key, reason: "required section missing") }
            return nil
        }
        guard let object = value as? [String: Any] else { throw ConfigError(key: key, reason: "must be an object") }
        return object
    }

    public static func int(
        _ section: [String: Any]?, _ fullKey: String, default value: Int, range: ClosedRange<Int>
    ) throws(ConfigError) -> Int {
        let key = String(fullKey.split(separator: ".").last ?? "")
        guard let raw = section?[key] else { return value }
        guard let number = raw as? Int, range.contains(number) else {
            throw ConfigError(key: fullKey, reason: "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return number
    }

    /// An integer key with no default: nil when absent.
    public static func optionalInt(_ section: [String: Any]?, _ fullKey: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        let key = String(fullKey.split(separator: ".").last ?? "")
        guard section?[key] != nil else { return nil }
        return try int(section, fullKey, default: range.lowerBound, range: range)
    }

    public static func bool(_ section: [String: Any]?, _ fullKey: String, default value: Bool) throws(ConfigError) -> Bool {
        let key = String(fullKey.split(separator: ".").last ?? "")
        guard let raw = section?[key] else { return value }
        guard let flag = raw as? Bool else { throw ConfigError(key: fullKey, reason: "true or false") }
        return flag
    }

    public static func string(_ section: [String: Any]?, _ fullKey: String) throws(ConfigError) -> String? {
        let key = String(fullKey.split(separator: ".").last ?? "")
        guard let raw = section?[key] else { return nil }
        guard let text = raw as? String else { throw ConfigError(key: fullKey, reason: "a string") }
        return text
    }

    /// An address to listen on: `host:port` with a port from 0 (any free port) to 65535.
    public static func splitListenAddress(_ address: String) -> (host: String, port: Int)? {
        split(address, ports: 0...65_535)
    }

    /// `host:port` with a port from 1 to 65535.
    public static func splitAddress(_ address: String) -> (host: String, port: Int)? {
        split(address, ports: 1...65_535)
    }

    private static func split(_ address: String, ports: ClosedRange<Int>) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            ports.contains(port), colon > address.startIndex
        else { return nil }
        return (String(address[..<colon]), port)
    }
}
