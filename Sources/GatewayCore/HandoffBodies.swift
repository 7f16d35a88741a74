import Foundation

/// Where a pd-split request's prompt is computed before its decode instance generates.
public struct PrefillTarget: Sendable, Equatable {
    public var id: String
    public var endpointURL: String
    /// Which hand-off protocol the pair speaks.
    public var flow: HandoffFlow
    /// SGLang: the prefill server's bootstrap port.
    public var bootstrapPort: Int

    public init(id: String, endpointURL: String, flow: HandoffFlow, bootstrapPort: Int) {
        self.id = id
        self.endpointURL = endpointURL
        self.flow = flow
        self.bootstrapPort = bootstrapPort
    }

    /// The prefill server's host as the decode server must reach it (SGLang's `bootstrap_host`).
    public var host: String { URLComponents(string: endpointURL)?.host ?? endpointURL }
}

/// The two hand-off protocols in the field.
public enum HandoffFlow: String, Sendable, Equatable, CaseIterable {
    /// vLLM's (NixlConnector and its proxies): prefill first, then decode with what it returned.
    case vllm
    /// SGLang's (mini_lb, sgl-router): both at once, joined by a bootstrap room.
    case sglang
}

/// The request bodies of the hand-off flows, derived from the client's body; only the fields the
/// engines' own proxies change are touched.
public enum HandoffBodies {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case notAnObject
        public var description: String { "the request body is not a JSON object" }
    }

    /// vLLM's prefill leg: one token, not streamed, and a request for a remote decode.
    public static func vllmPrefill(_ body: [UInt8]) throws(Failure) -> [UInt8] {
        var object = try parse(body)
        object["kv_transfer_params"] = [
            "do_remote_decode": true, "do_remote_prefill": false, "remote_engine_id": NSNull(), "remote_block_ids": NSNull(),
            "remote_host": NSNull(), "remote_port": NSNull(),
        ] as [String: Any]
        object["stream"] = false
        object["max_tokens"] = 1
        if object["max_completion_tokens"] != nil { object["max_completion_tokens"] = 1 }
        object["stream_options"] = nil
        return try serialize(object)
    }

    /// The `kv_transfer_params` of a prefill leg's answer; nil when it has none.
    public static func kvTransferParams(fromAnswer answer: [UInt8]) -> [String: Any]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any] else { return nil }
        return object["kv_transfer_params"] as? [String: Any]
    }

    /// vLLM's decode leg: the client's request with the prefill's `kv_transfer_params`.
    public static func vllmDecode(_ body: [UInt8], kvTransferParams: [String: Any]) throws(Failure) -> [UInt8] {
        var object = try parse(body)
        object["kv_transfer_params"] = kvTransferParams
        return try serialize(object)
    }

    /// SGLang's request for both legs: the client's, with the prefill server's bootstrap address
    /// and the room that joins the two legs.
    public static func sglang(_ body: [UInt8], host: String, port: Int, room: UInt64) throws(Failure) -> [UInt8] {
        var object = try parse(body)
        object["bootstrap_host"] = host
        object["bootstrap_port"] = port
        object["bootstrap_room"] = NSNumber(value: room)
        return try serialize(object)
    }

    /// A room as SGLang's balancers draw it: uniform below 2^63.
    public static func randomRoom() -> UInt64 { UInt64.random(in: 0..<(1 << 63)) }

    private static func parse(_ body: [UInt8]) throws(Failure) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { throw .notAnObject }
        return object
    }

    private static func serialize(_ object: [String: Any]) throws(Failure) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: object) else { throw .notAnObject }
        return Array(data)
    }
}
