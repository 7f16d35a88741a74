import Foundation
import Synchronization

/// The faults an operator or a test can switch on, by flags at start or at run time through
/// `POST /admin/faults` (JSON with any of these keys; `DELETE /admin/faults` clears them).
public struct Faults: Sendable, Equatable {
    /// Fraction of inference requests answered with `errorStatus` (500 or 503) instead.
    public var errorRate = 0.0
    public var errorStatus = 500
    /// Accept every request (but `/admin`) and never answer: a wedged engine.
    public var hang = false
    /// Multiplies every step's duration.
    public var slowness = 1.0
    /// Close a stream's connection, without a done marker, after this many tokens of it.
    public var cutStreamAfterTokens: Int?
    /// Exit the process as soon as any stream has sent this many tokens: a crash mid-stream.
    public var crashAfterTokens: Int?
    /// `/health` answers 503 while inference goes on serving.
    public var healthFailing = false
    /// Hold a stream's response open this many milliseconds after its `data: [DONE]` before
    /// ending it: an engine (or a proxy in front of it) slow to end what it has finished.
    public var doneLingerMs: Int?

    public init() {}

    static let keys = [
        "error_rate", "error_status", "hang", "slowness", "cut_stream_after_tokens", "crash_after_tokens",
        "health_failing", "done_linger_ms",
    ]

    /// Applies the keys present in a JSON object; unknown keys and bad values are errors that
    /// name the key.
    mutating func apply(_ object: [String: Any]) throws(RequestError) {
        for key in object.keys where !Self.keys.contains(key) {
            throw .invalid("unknown fault '\(key)'; known: \(Self.keys.joined(separator: ", "))", param: key)
        }
        if let value = object["error_rate"] {
            guard let rate = JSONValue.double(value), (0...1).contains(rate) else {
                throw .invalid("error_rate must be a number from 0 to 1", param: "error_rate")
            }
            errorRate = rate
        }
        if let value = object["error_status"] {
            guard let status = JSONValue.int(value), status == 500 || status == 503 else {
                throw .invalid("error_status must be 500 or 503", param: "error_status")
            }
            errorStatus = status
        }
        if let value = object["hang"] {
            guard let flag = JSONValue.bool(value) else { throw .invalid("hang must be true or false", param: "hang") }
            hang = flag
        }
        if let value = object["slowness"] {
            guard let factor = JSONValue.double(value), factor >= 1, factor <= 1000 else {
                throw .invalid("slowness must be a number from 1 to 1000", param: "slowness")
            }
            slowness = factor
        }
        for (key, path) in [
            ("cut_stream_after_tokens", \Faults.cutStreamAfterTokens), ("crash_after_tokens", \Faults.crashAfterTokens),
            ("done_linger_ms", \Faults.doneLingerMs),
        ] {
            guard let value = object[key] else { continue }
            if value is NSNull { self[keyPath: path] = nil; continue }
            guard let count = JSONValue.int(value), count >= 0 else {
                throw .invalid("\(key) must be a non-negative integer or null", param: key)
            }
            self[keyPath: path] = count
        }
        if let value = object["health_failing"] {
            guard let flag = JSONValue.bool(value) else {
                throw .invalid("health_failing must be true or false", param: "health_failing")
            }
            healthFailing = flag
        }
    }

    var json: String {
        func optional(_ value: Int?) -> String { value.map(String.init) ?? "null" }
        return "{\"error_rate\":\(errorRate),\"error_status\":\(errorStatus),\"hang\":\(hang),"
            + "\"slowness\":\(slowness),\"cut_stream_after_tokens\":\(optional(cutStreamAfterTokens)),"
            + "\"crash_after_tokens\":\(optional(crashAfterTokens)),\"health_failing\":\(healthFailing),"
            + "\"done_linger_ms\":\(optional(doneLingerMs))}"
    }
}

/// The current faults, shared by every request handler and the step loop.
final class FaultSwitch: Sendable {
    private let state: Mutex<Faults>
    init(_ faults: Faults) { state = Mutex(faults) }
    var current: Faults { state.withLock { $0 } }
    func update(_ change: (inout Faults) throws(RequestError) -> Void) throws(RequestError) -> Faults {
        try state.withLock { (faults: inout Faults) throws(RequestError) -> Faults in
            try change(&faults)
            return faults
        }
    }
}
