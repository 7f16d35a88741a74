import EngineModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The simulator's part in prefill/decode disaggregation (Docs/engine-sim.md): which side of a
/// hand-off a request puts this instance on, the prefill side's publishing of a computed prompt,
/// the decode side's fetch and transfer, and the side channel between them.
extension EngineRoutes {
    enum HandoffSide: Sendable {
        /// An ordinary request.
        case none
        /// Compute the prompt and keep its KV under `key`; `vllm`: answer with kv_transfer_params.
        case prefill(key: String, vllm: Bool)
        /// Fetch the prompt's KV from the prefill instance before generating. `required`: fail the
        /// request when the fetch fails (SGLang aborts it); otherwise compute the prompt here
        /// (vLLM's recompute on a failed KV load).
        case decode(host: String, port: Int, key: String, wait: Duration, required: Bool)
    }

    func handoffSide(_ handoff: Handoff?, headers: HTTPFields) -> HandoffSide {
        switch handoff {
        case nil:
            return .none
        case .vllmPrefill:
            let id = headers[HTTPField.Name("X-Request-Id")!].flatMap { $0.isEmpty ? nil : $0 } ?? UUID().uuidString
            return .prefill(key: HandoffLedger.key(vllmRequest: id), vllm: true)
        case .vllmDecode(let id, let host, let port, _):
            return .decode(host: host, port: port, key: HandoffLedger.key(vllmRequest: id), wait: .zero, required: false)
        case .sglang(let host, let port, let room):
            switch state.config.role {
            case .prefill: return .prefill(key: HandoffLedger.key(sglangRoom: room), vllm: false)
            case .decode:
                return .decode(
                    host: host, port: port, key: HandoffLedger.key(sglangRoom: room),
                    wait: .seconds(state.config.handoffTimeoutSeconds), required: true)
            case .both: return .none  // an SGLang server outside disaggregation ignores the fields
            }
        }
    }

    /// Fetches the prompt's KV from the prefill instance and waits out the transfer of the blocks
    /// not already cached here (longer for more blocks). Returns the blocks to cache with the
    /// request (0 when the fetch failed and the prompt is computed here).
    func receiveKV(_ prompt: [UInt32], host: String, port: Int, key: String, wait: Duration, required: Bool) async throws(RequestError) -> Int {
        let stats = state.handoff
        stats.awaitingKV.add(1, ordering: .relaxed)
        defer { stats.awaitingKV.subtract(1, ordering: .relaxed) }
        let prefilled: HandoffLedger.Prefilled
        do {
            prefilled = try await state.kvFetch.fetch(host: host, port: port, transfer: key, wait: wait)
        } catch {
            stats.fetchFailures.add(1, ordering: .relaxed)
            if required { throw .unavailable("KV transfer from the prefill server \(host):\(port) failed: \(error)") }
            state.logger.warning("KV fetch failed: computing the prompt here", metadata: ["prefill": "\(host):\(port)", "error": "\(error)"])
            return 0
        }
        let config = state.config
        // As a real connector, only what this instance does not hold already crosses the link.
        let held = min(await state.runner.cachedBlockIDs(of: prompt).count, prefilled.blocks)
        let moved = prefilled.blocks - held
        let seconds = (config.kvTransferBaseSeconds + config.kvTransferSecondsPerBlock * Double(moved)) / config.speed
        let started = ContinuousClock.now
        try? await Task.sleep(for: .seconds(seconds))
        stats.receivedBlocks.add(moved, ordering: .relaxed)
        stats.transfers.add(1, ordering: .relaxed)
        stats.transferMicroseconds.add(Int((ContinuousClock.now - started) / .microseconds(1)), ordering: .relaxed)
        return prefilled.blocks
    }

    /// Runs a prefill leg to its end (one token for SGLang, what was asked for vLLM's), then keeps
    /// the prompt's KV for the decode instance. Returns the events for the answer.
    func prefillAndPublish(_ events: AsyncStream<StreamEvent>, prompt: [UInt32], key: String) async -> (events: [StreamEvent], blocks: [Int32]) {
        var collected: [StreamEvent] = []
        var finished = false
        for await event in events {
            collected.append(event)
            switch event {
            case .token(_, let finish): finished = finish.map { $0.0 != .abort } ?? false
            case .ended(let reason, _): finished = reason != .abort
            case .scheduled: break
            }
        }
        guard finished else { return (collected, []) }
        let blocks = await state.runner.cachedBlockIDs(of: prompt)
        await state.ledger.publish(key, HandoffLedger.Prefilled(blocks: blocks.count, tokens: prompt.count))
        state.handoff.prefilledForDecode.add(1, ordering: .relaxed)
        return (collected, blocks)
    }

    /// vLLM NixlConnector's answer to a prefill leg, for the proxy to pass to the decode leg; the
    /// side channel is this server (NIXL's would be its own port).
    func kvTransferParams(key: String, blocks: [Int32]) -> String {
        let id = String(key.dropFirst("vllm:".count))
        return "{\"do_remote_prefill\":true,\"do_remote_decode\":false,\"remote_block_ids\":[\(blocks.map(String.init).joined(separator: ","))],"
            + "\"remote_engine_id\":\(JSONText.string(state.engineID)),\"remote_host\":\(JSONText.string(state.config.host)),"
            + "\"remote_port\":\(state.boundPort),\"remote_request_id\":\(JSONText.string(id)),\"tp_size\":1}"
    }

    func handoffSnapshot() async -> HandoffSnapshot {
        let stats = state.handoff
        let ledger = state.ledger
        return HandoffSnapshot(
            role: state.config.role, awaitingKV: stats.awaitingKV.load(ordering: .relaxed),
            receivedBlocks: stats.receivedBlocks.load(ordering: .relaxed), transfers: stats.transfers.load(ordering: .relaxed),
            transferSeconds: Double(stats.transferMicroseconds.load(ordering: .relaxed)) / 1e6,
            fetchFailures: stats.fetchFailures.load(ordering: .relaxed), pendingHandoffs: await ledger.pending,
            sentBlocks: await ledger.sentBlocks, expiredHandoffs: await ledger.expired,
            prefilledForDecode: stats.prefilledForDecode.load(ordering: .relaxed))
    }

    /// The side channel: a decode instance takes a computed prompt's KV (`transfer` is the
    /// ledger key), waiting up to `wait_ms` for an SGLang prefill still running.
    func kvPull(_ request: Request) async -> Response {
        var request = request
        guard let body = try? await request.collectBody(upTo: 1 << 16),
            let object = try? JSONSerialization.jsonObject(with: Data(Array(buffer: body))) as? [String: Any],
            let transfer = object["transfer"] as? String
        else { return error(.invalid("The body must be {\"transfer\": KEY, \"wait_ms\": N}.")) }
        let wait = min(max(object["wait_ms"].flatMap(JSONValue.int) ?? 0, 0), 600_000)
        guard let prefilled = await state.ledger.take(transfer, wait: .milliseconds(wait)) else {
            return json(404, "{\"error\":\(JSONText.string("no KV held for \(transfer)"))}")
        }
        return json(200, "{\"blocks\":\(prefilled.blocks),\"tokens\":\(prefilled.tokens)}")
    }
}

extension AsyncStream where Element == StreamEvent {
    /// Replays events already collected.
    static func replaying(_ events: [StreamEvent]) -> AsyncStream<StreamEvent> {
        AsyncStream { continuation in
            for event in events { continuation.yield(event) }
            continuation.finish()
        }
    }
}
