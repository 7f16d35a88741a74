import Foundation

/// The prefill/decode hand-off fields of a request, as each engine family names them.
///
/// vLLM (NixlConnector, driven by a proxy in sequence): the prefill leg carries
/// `kv_transfer_params: {do_remote_decode: true, ...}`; its answer carries the parameters the
/// decode leg then sends back (`do_remote_prefill: true`, `remote_host`, `remote_port`,
/// `remote_block_ids`, `remote_engine_id`, and the simulator's `remote_request_id`).
///
/// SGLang (mooncake/nixl transfer, both legs sent at once): both legs carry `bootstrap_host`,
/// `bootstrap_port` and `bootstrap_room`; the instance's role says which side it is.
enum Handoff: Sendable, Equatable {
    case vllmPrefill
    case vllmDecode(transferID: String, host: String, port: Int, blockCount: Int)
    case sglang(host: String, port: Int, room: UInt64)

    /// SGLang's default `--disaggregation-bootstrap-port`, used when `bootstrap_port` is null.
    static let sglangDefaultBootstrapPort = 8998

    static func parse(_ object: [String: Any]) throws(RequestError) -> Handoff? {
        if let params = object["kv_transfer_params"], !(params is NSNull) {
            guard let params = params as? [String: Any] else {
                throw .invalid("kv_transfer_params must be an object", param: "kv_transfer_params")
            }
            if JSONValue.bool(params["do_remote_decode"] ?? false) == true { return .vllmPrefill }
            if JSONValue.bool(params["do_remote_prefill"] ?? false) == true { return try vllmDecode(params) }
            return nil
        }
        guard let roomValue = object["bootstrap_room"], !(roomValue is NSNull) else { return nil }
        // Rooms are drawn from 0..<2^63, beyond a Double's exact integers: read them as integers.
        guard !JSONValue.isBool(roomValue), let room = roomValue as? Int, room >= 0 else {
            throw .invalid("bootstrap_room must be a non-negative integer", param: "bootstrap_room")
        }
        guard let host = object["bootstrap_host"] as? String, !host.isEmpty else {
            throw .invalid("bootstrap_host (the prefill server's host) is required with bootstrap_room", param: "bootstrap_host")
        }
        var port = sglangDefaultBootstrapPort
        if let value = object["bootstrap_port"], !(value is NSNull) {
            guard let given = JSONValue.int(value), (1...65_535).contains(given) else {
                throw .invalid("bootstrap_port must be a port number", param: "bootstrap_port")
            }
            port = given
        }
        return .sglang(host: host, port: port, room: UInt64(room))
    }

    private static func vllmDecode(_ params: [String: Any]) throws(RequestError) -> Handoff {
        func missing(_ key: String, _ what: String) -> RequestError {
            .invalid("kv_transfer_params.\(key) must be \(what) when do_remote_prefill is true", param: "kv_transfer_params")
        }
        guard let host = params["remote_host"] as? String, !host.isEmpty else { throw missing("remote_host", "a host") }
        guard let port = params["remote_port"].flatMap(JSONValue.int), (1...65_535).contains(port) else {
            throw missing("remote_port", "a port number")
        }
        guard let blocks = params["remote_block_ids"] as? [Any] else { throw missing("remote_block_ids", "a list") }
        guard let transferID = params["remote_request_id"] as? String, !transferID.isEmpty else {
            throw missing("remote_request_id", "the prefill request's id")
        }
        return .vllmDecode(transferID: transferID, host: host, port: port, blockCount: blocks.count)
    }
}
